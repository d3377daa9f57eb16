"""Drive an interactive program through a pseudo-terminal as a person does at a keyboard: type,
then read the screen until what one waits for appears (tests/test_repl.py, tests/test_docs.py)."""
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time


def _own_terminal():
    """In the child: a session of its own whose controlling terminal is the pty (stdin), so that
    Ctrl-C typed there is SIGINT to it, as in a terminal window."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    def __init__(self, args, cwd=None, env=None):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                                     preexec_fn=_own_terminal)
        os.close(slave)
        self.fd = master
        self.screen = b""       # everything shown so far
        self.pos = 0            # where the next expect() starts looking

    def _read(self, wait):
        ready, _, _ = select.select([self.fd], [], [], wait)
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:         # EIO: the program closed the terminal
            data = b""
        if not data:
            raise EOFError
        self.screen += data
        return True

    def text(self):
        """The screen as text, line ends as \n."""
        return self.screen.decode("utf-8", "replace").replace("\r\n", "\n")

    def expect(self, pattern, timeout=120):
        """Wait until `pattern` (a regex) shows after the last match; returns the text from the
        last match to the end of this one."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            m = regex.search(text, self.pos)
            if m:
                seen, self.pos = text[self.pos:m.end()], m.end()
                return seen
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"waited {timeout} s for {pattern!r}; the screen ends with:\n{text[-1500:]}")
            try:
                self._read(min(left, 0.5))
            except EOFError:
                raise EOFError(f"the program ended before {pattern!r} showed:\n{text[-1500:]}") from None

    def type(self, text, key_delay=0.0):
        """Keys as typed ("\\r" is Enter, "\\x03" Ctrl-C ...)."""
        data = text.encode()
        if key_delay:
            for i in range(len(data)):
                os.write(self.fd, data[i:i + 1])
                time.sleep(key_delay)
        else:
            os.write(self.fd, data)

    def wait(self, timeout=60):
        """The program's exit status once it ends (its output drained meanwhile)."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                self._read(0.2)
            except EOFError:
                pass
        return self.proc.wait(max(deadline - time.monotonic(), 0.1))

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        os.close(self.fd)
