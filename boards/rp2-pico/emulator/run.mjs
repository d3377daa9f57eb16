// Boot a Raspberry Pi Pico firmware (.uf2) in rp2040js and bridge its USB CDC serial port to this
// process's stdin/stdout (host_tools/boards/rp2040js.py gives it a pty there, which mpremote opens).
//
//   node run.mjs FIRMWARE.uf2 [--flash FILE@OFFSET ...]
//
// --flash writes FILE's bytes into the emulated Flash at OFFSET (hex or decimal) after the firmware:
// a ROMFS image for the board's ROMFS partition. Everything is in RAM: Flash writes by the
// firmware (LittleFS) last until the process ends.
// Needs the rp2040js package (npm, pinned by tools/install_rp2040js.sh) and the RP2040 boot ROM,
// bootrom.ts beside this file (Raspberry Pi's pico-bootrom B1, BSD-3-Clause, as rp2040js's authors
// built it).
import fs from 'fs';
import path from 'path';
import { fileURLToPath, pathToFileURL } from 'url';

// The package's folder from RP2040JS_DIR (host_tools/boards/rp2040js.py sets it), else node's own lookup.
const dir = process.env.RP2040JS_DIR;
const { Simulator, USBCDC, ConsoleLogger, LogLevel } =
  await import(dir ? pathToFileURL(path.join(dir, 'dist', 'esm', 'index.js')).href : 'rp2040js');

const FLASH_START = 0x10000000;
const UF2_MAGIC = [0x0a324655, 0x9e5d5157];
const UF2_BLOCK = 512;
const SLICE = 100000;          // instructions between looks at the host's input
const CYCLE_NS = 1e9 / 125e6;  // rp2040js's clock: 125 MHz

function die(message) {
  process.stderr.write(`rp2040js: ${message}\n`);
  process.exit(2);
}

function bootrom() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const text = fs.readFileSync(path.join(here, 'bootrom.ts'), 'utf8');
  const body = text.slice(text.indexOf('new Uint32Array(['));
  const words = body.match(/0x[0-9a-fA-F]{1,8}/g);
  if (!words || words.length !== 4096) die(`bootrom.ts holds ${words ? words.length : 0} words, not 4096`);
  return new Uint32Array(words.map((w) => parseInt(w, 16)));
}

function loadUF2(file, flash) {
  const data = fs.readFileSync(file);
  if (data.length === 0 || data.length % UF2_BLOCK) die(`${file} is not a UF2 file (size ${data.length})`);
  for (let pos = 0; pos < data.length; pos += UF2_BLOCK) {
    const word = (i) => data.readUInt32LE(pos + 4 * i);
    if (word(0) !== UF2_MAGIC[0] || word(1) !== UF2_MAGIC[1]) die(`${file}: block ${pos / UF2_BLOCK} is not UF2`);
    const address = word(3) - FLASH_START;
    const size = word(4);
    if (address < 0 || address + size > flash.length || size > 476) die(`${file}: block outside the Flash`);
    flash.set(data.subarray(pos + 32, pos + 32 + size), address);
  }
}

const args = process.argv.slice(2);
const firmware = args.shift();
if (!firmware) die('usage: node run.mjs FIRMWARE.uf2 [--flash FILE@OFFSET ...]');
const simulator = new Simulator();
const mcu = simulator.rp2040;
mcu.loadBootrom(bootrom());
mcu.logger = new ConsoleLogger(LogLevel.Error);
loadUF2(firmware, mcu.flash);
while (args.length) {
  const opt = args.shift();
  const m = opt === '--flash' && /^(.*)@((?:0x)?[0-9a-fA-F]+)$/.exec(args.shift() || '');
  if (!m) die(`bad argument ${opt}`);
  const bytes = fs.readFileSync(m[1]);
  const offset = Number(m[2].startsWith('0x') ? m[2] : parseInt(m[2], 10));
  if (offset + bytes.length > mcu.flash.length) die(`${m[1]} does not fit the Flash at ${m[2]}`);
  mcu.flash.set(bytes, offset);
}

// Host -> board: held until the board's USB is up, then fed into the CDC FIFO as it has room
// (rp2040js drops what does not fit).
const cdc = new USBCDC(mcu.usbCtrl);
const pending = [];
let connected = false;
cdc.onDeviceConnected = () => { connected = true; };
cdc.onSerialData = (bytes) => { process.stdout.write(bytes); };
process.stdin.on('data', (chunk) => { for (const b of chunk) pending.push(b); });
process.stdin.on('end', () => process.exit(0));

function feed() {
  let n = 0;
  while (connected && n < pending.length && !cdc.txFIFO.full) cdc.sendSerialByte(pending[n++]);
  if (n) pending.splice(0, n);
}

// Simulator.execute()'s loop, with the input fed in between slices.
const { clock } = simulator;
function run() {
  for (let i = 0; i < SLICE; i++) {
    if (mcu.core.waiting) {
      const nanos = clock.nanosToNextAlarm;
      clock.tick(nanos);
      i += nanos / CYCLE_NS;
    } else {
      clock.tick(mcu.core.executeInstruction() * CYCLE_NS);
    }
  }
  feed();
  setImmediate(run);
}
mcu.core.PC = FLASH_START;
run();
