"""Resume: a training killed by its PID right after a checkpoint, resumed with `lcrec train --resume_from_checkpoint
true`, ends with exactly the weights and loss curve of an uninterrupted run with the same seed."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from sft_fixtures import sft_args, subprocess_env, weights, write_sft_data

from lcrec.training import parse_sft_args, run_sft

KILL_AFTER_STEP = 4
MAX_STEPS = 8
# Several epochs (the 32-row mix is 4 steps), a decaying learning rate and Adam state: resuming must restore the
# optimizer, the scheduler, the epoch's template draw and the position inside the epoch.
SCHEDULE = (
    "--max_steps",
    str(MAX_STEPS),
    "--save_strategy",
    "steps",
    "--save_steps",
    "2",
    "--learning_rate",
    "1e-2",
    "--lr_scheduler_type",
    "linear",
    "--warmup_steps",
    "2",
)

# The training as a user starts it (run_sft), plus a callback that reports each finished checkpoint and then waits,
# so that the test kills the process at a known point: after checkpoint-KILL_AFTER_STEP, before the next step.
DRIVER = textwrap.dedent("""
    import sys
    from transformers import TrainerCallback
    from lcrec.training import parse_sft_args, run_sft

    class ReportCheckpoints(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            print(f"SAVED {state.global_step}", flush=True)
            if state.global_step == int(sys.argv[1]):
                sys.stdin.readline()  # never answered: the test kills this process here

    run_sft(*parse_sft_args(sys.argv[2:]), callbacks=[ReportCheckpoints()])
""")


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory) -> dict:
    return write_sft_data(tmp_path_factory.mktemp("resume-data"))


def _losses(output_dir) -> list[tuple[int, float]]:
    history = json.loads((output_dir / "training_results.json").read_text())["log_history"]
    return [(entry["step"], entry["loss"]) for entry in history if "loss" in entry]


def test_killed_training_resumes_from_the_last_checkpoint_to_the_same_weights(
    sft_data, tmp_path, one_torch_thread, capsys
):
    from lcrec.cli import main

    uninterrupted = tmp_path / "uninterrupted"
    run_sft(*parse_sft_args(sft_args(sft_data, uninterrupted, *SCHEDULE)))

    interrupted = tmp_path / "interrupted"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    log = tmp_path / "driver.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(driver), str(KILL_AFTER_STEP), *sft_args(sft_data, interrupted, *SCHEDULE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=subprocess_env(),
        )
    try:
        saved = []
        for line in process.stdout:
            if line.startswith("SAVED "):
                saved.append(int(line.split()[1]))
                if saved[-1] == KILL_AFTER_STEP:
                    os.kill(process.pid, signal.SIGKILL)
                    break
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)
    assert saved == [2, KILL_AFTER_STEP], log.read_text()[-3000:]
    assert process.returncode == -signal.SIGKILL
    assert sorted(path.name for path in interrupted.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert not (interrupted / "model.safetensors").exists()  # the run died before its final save
    written = {path: path.stat().st_mtime_ns for path in interrupted.glob("checkpoint-*/model.safetensors")}

    capsys.readouterr()
    assert main(["train", *sft_args(sft_data, interrupted, *SCHEDULE, "--resume_from_checkpoint", "true")]) == 0
    # It resumed rather than retrained: only the steps after the checkpoint ran, the old checkpoints are untouched.
    logged = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{'loss'")]
    assert len(logged) == MAX_STEPS - KILL_AFTER_STEP, logged
    assert {path: path.stat().st_mtime_ns for path in written} == written

    assert _losses(interrupted) == _losses(uninterrupted)
    assert [step for step, _ in _losses(interrupted)] == list(range(1, MAX_STEPS + 1))
    expected, resumed = weights(uninterrupted), weights(interrupted)
    assert expected.keys() == resumed.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, resumed[name]), name
    initial = weights(interrupted / "checkpoint-2")
    assert any(not torch.equal(initial[name], tensor) for name, tensor in expected.items())  # training moved them
