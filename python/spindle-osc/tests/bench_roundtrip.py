"""Measures what one plug-in call costs through the Python runner, as spindle makes it: start
the process (spindle's command line and environment), spindle.hello, one plugin.call, close
stdin, wait for the exit.

    python3 tests/bench_roundtrip.py [--python PATH] [--runs 20] [--module acme.minimal]

Not a unit test (timings depend on the machine); prints the median and the spread.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "tests",
                       "python-plugins")

HELLO = {"jsonrpc": "2.0", "id": 0, "method": "spindle.hello",
         "params": {"protocol_versions": [1], "host": "spindle 0.1.0"}}


def one_run(python, module, cls, env, state_dir):
    call = {"jsonrpc": "2.0", "id": 1, "method": "plugin.call",
            "params": {"class": cls, "method": "getCapabilities",
                       "args": {"ss_record": {"uuid": "ss-1", "storage_type": "iSCSIStorage",
                                              "extra_info": "state_dir=%s" % state_dir}},
                       "call_id": "bench", "dev_path_prefix": "/dev/mapper/"}}
    start = time.perf_counter()
    proc = subprocess.Popen([python, "-s", "-m", "spindle_osc_runner", "--root", SAMPLES,
                             "--module", module], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, cwd=SAMPLES, env=env)
    proc.stdin.write((json.dumps(HELLO) + "\n").encode())
    proc.stdin.flush()
    hello = json.loads(proc.stdout.readline())
    assert "result" in hello, hello
    proc.stdin.write((json.dumps(call) + "\n").encode())
    proc.stdin.flush()
    answer = json.loads(proc.stdout.readline())
    assert "result" in answer, answer
    proc.stdin.close()
    assert proc.wait() == 0
    proc.stdout.close()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--module", default="acme.minimal")
    parser.add_argument("--class", dest="cls", default="acme.minimal.MinimalArray.MinimalArray")
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    pycache = tempfile.mkdtemp(prefix="spindle-osc-bench-pycache-")
    env.update({"PYTHONPATH": SRC, "PYTHONPYCACHEPREFIX": pycache, "PYTHONUNBUFFERED": "1"})
    state_dir = tempfile.mkdtemp(prefix="spindle-osc-bench-state-")
    one_run(args.python, args.module, args.cls, env, state_dir)  # warm the bytecode cache
    times = sorted(one_run(args.python, args.module, args.cls, env, state_dir) * 1000
                   for _ in range(args.runs))
    print("%s: hello + one call, %d runs: median %.1f ms (min %.1f, max %.1f, stdev %.1f)" % (
        args.python, args.runs, statistics.median(times), times[0], times[-1],
        statistics.pstdev(times)))


if __name__ == "__main__":
    main()
