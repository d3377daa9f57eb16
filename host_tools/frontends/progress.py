"""Progress bars of the converter's long steps: tqdm on a terminal (stderr), nothing otherwise
(pipes, logs, tests)."""


def progress(total, desc):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="img", disable=None, leave=False)
