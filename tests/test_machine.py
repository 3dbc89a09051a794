"""How many threads a job takes when it is not told (slimrec.machine)."""

import subprocess
import sys

import pytest
import torch

from slimrec import machine

SPIN = "import sys; print('ready', flush=True)\nwhile True: pass"


@pytest.fixture
def busy_machine():
    """Every core of this process kept busy by other processes, one spinning per core."""
    n_cores = machine.cores() or 1
    spinners = [
        subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True)
        for _ in range(n_cores)
    ]
    try:
        for spinner in spinners:
            assert spinner.stdout is not None and spinner.stdout.readline() == "ready\n"
        machine._chosen.clear()  # no choice made before the spinners started
        yield n_cores
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
        machine._chosen.clear()


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/stat")
def test_a_job_not_told_its_threads_leaves_the_busy_cores_to_the_work_on_them(busy_machine):
    # However the scheduler shares the cores, the spinners and any other load fill them.
    busy = machine.busy_cores(seconds=0.5)
    assert busy is not None and busy >= 0.75 * busy_machine
    before = torch.get_num_threads()
    try:
        assert machine.set_torch_threads(None) == 1
        assert torch.get_num_threads() == 1
        assert machine.set_torch_threads(3) == 3  # a count given is a count kept
    finally:
        torch.set_num_threads(before)


def test_this_process_own_work_is_not_counted_as_other_work():
    # 2 s of busy ticks over 1 s of wall time, 1.5 s of it this process's: 0.5 cores.
    assert machine.others_busy(200, own_seconds=1.5, wall_seconds=1.0, ticks=100) == 0.5
    assert machine.others_busy(100, own_seconds=1.5, wall_seconds=1.0, ticks=100) == 0.0


def test_the_choice_is_reused_briefly_so_many_jobs_do_not_each_measure():
    machine._chosen.clear()
    first = machine.default_threads()
    measured_at = machine._chosen["last"][0]
    assert [machine.default_threads() for _ in range(50)] == [first] * 50
    assert machine._chosen["last"][0] == measured_at  # no second measurement
    machine._chosen.clear()


@pytest.mark.parametrize(
    ("flags", "auto"),
    [
        (["avx2", "avx512f"], None),
        (["avx2", "avx512_bf16"], torch.bfloat16),
        (["amx_bf16"], torch.bfloat16),
    ],
)
def test_autocast_auto_is_bf16_only_on_cpus_that_multiply_it_natively(monkeypatch, flags, auto):
    from slimrec.llm.local import pick_autocast

    monkeypatch.setattr(machine, "vector_flags", lambda: flags)
    cpu = torch.device("cpu")
    assert pick_autocast("auto", cpu) == auto
    assert pick_autocast(None, cpu) is None
    assert pick_autocast("bfloat16", cpu) == torch.bfloat16  # asked for: given
