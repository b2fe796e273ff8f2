"""Protocols in real runs on the simulator: recipes end to end (plateaus split by the file's
events, against the simulator's worm-like chain), scripts that fail or hang, bad protocols."""

import signal
from pathlib import Path

import numpy as np
import pytest

from simulators.motion import MotionParams, wlc_extension
from tests.pipeline import _runner as r

REPO = Path(__file__).resolve().parents[2]
TABLE = str(REPO / "configs" / "force_table_m270.csv")  # the sim's M-270 force law
BEADS = [[32, 32], [96, 32]]
RADIUS, CONTOUR, PERSISTENCE = 1400.0, 3400.0, 50.0
KT = MotionParams().kt


def _config(tmp: Path, name: str = "run", **overrides: object) -> Path:
    """Two M-270 beads on 3.4 um tethers; a Z-LUT sweep, done at 20 pN (magnets at 1.18 mm:
    the beads still within 3 nm), covering their heights from 0.1 pN to 20 pN."""
    base = r.two_beads(
        tmp, BEADS, (5300, 8400), seed=3, frame_rate=200, drift_nm_per_s=[0.5, 0.3, 0.2]
    )  # no reference bead: a slow focus drift
    base["magnets"] = {"driver": "sim", "settings": {"bead_type": "M270"}, "height_mm": 8.0}
    base["duration"] = 120
    return r.write_config(tmp, base, name, **overrides)


@pytest.fixture(scope="module")
def lut(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("protolut")
    out = tmp / "lut.h5"
    cfg = _config(tmp, magnets={"height_mm": 1.18})
    done = r.cli("calibrate", str(cfg), "--output", str(out), cwd=tmp, timeout=400)
    assert done.returncode == 0, done.stderr
    return out


def _plateaus(data: dict) -> list[tuple[bytes, np.ndarray]]:
    """Each hold's label and its frames, from the file's events alone."""
    ev = data["events"]
    starts = ev[(ev["kind"] == b"start") & (ev["action"] == b"hold")]
    out = []
    for s in starts:
        end = ev[(ev["kind"] == b"end") & (ev["step"] == s["step"])][0]
        out.append((s["label"], np.arange(s["frame"], end["frame"])))
    return out


def _bead(data: dict, bead: int) -> tuple[np.ndarray, ...]:
    """Frame-indexed tracked z, true z, true force and true extension of one bead."""
    t, g = data["tracks"], data["truth"]
    t, g = t[t["bead_id"] == bead], g[g["bead_id"] == bead]
    n = int(max(t["frame"].max(), g["frame"].max())) + 1
    z, zt, f, ext = (np.full(n, np.nan) for _ in range(4))
    z[t["frame"]] = t["z_nm"]
    zt[g["frame"]], f[g["frame"]], ext[g["frame"]] = g["z_nm"], g["force_pn"], g["extension_nm"]
    return z, zt, f, ext


def _sigma_of_mean(force: float, seconds: float) -> float:
    """Standard error of a plateau's mean z: the bead's z fluctuation (kT/k_z)^1/2 with the
    trap's correlation time tau = gamma/k_z, over ``seconds``: sigma * (2 tau / T)^1/2."""
    mp = MotionParams(force_pn=force, bead_radius_nm=RADIUS)
    k_z = mp.stiffness[1]
    tau = mp.drag / k_z
    return float(np.sqrt(KT / k_z) * np.sqrt(min(1.0, 2 * tau / seconds)))


def test_force_extension_recipe_end_to_end(lut, tmp_path) -> None:
    forces = [0.1, 0.3, 0.7, 1.5, 3, 6, 12, 20]
    cfg = _config(tmp_path, tracking={"zlut": str(lut)}, protocol={
        "recipe": "force_extension", "forces_pn": forces, "hold_s": 2.0, "back_down": False,
        "force_table": TABLE, "end_height_mm": 8.0})  # fmt: skip
    checked = r.cli("validate", str(cfg), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "16 actions" in checked.stdout and "20 pN" in checked.stdout
    done = r.run(cfg, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "protocol ended: stopping the run" in done.stderr  # before the 120 s duration
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "complete"
    plateaus = _plateaus(data)
    assert [p[0] for p in plateaus] == [f"{f:g} pN".encode() for f in forces]
    assert data["motors"]["magnet_height_mm"][-1] == pytest.approx(8.0)  # parked at the end
    for bead in (0, 1):
        z, z_true, force, ext = _bead(data, bead)
        ok = np.isfinite(z) & np.isfinite(z_true)
        offset = np.median(z[ok] - z_true[ok])  # the Z-LUT's zero is arbitrary: one per bead
        means = []
        for (label, frames), nominal in zip(plateaus, forces, strict=True):
            frames = frames[int(0.2 * 200) :]  # 0.2 s settling after the move
            f_true = np.nanmedian(force[frames])
            assert f_true == pytest.approx(nominal, rel=0.2)  # the bead's moment: +-5 % sd
            measured = np.nanmean(z[frames]) - offset - RADIUS
            wlc = float(wlc_extension(f_true, CONTOUR, PERSISTENCE, KT))
            tol = 4 * _sigma_of_mean(f_true, len(frames) / 200) + 15  # + tracking and LUT
            assert abs(measured - wlc) < tol, (label, measured, wlc, tol)
            means.append(measured)
        assert (np.diff(means) > -50).all()  # extension rises with force (within noise)
        assert means[-1] - means[0] > 1200


def test_rotation_curve_and_force_ramp(lut, tmp_path) -> None:
    rot = _config(tmp_path, name="rot", tracking={"zlut": str(lut)}, protocol={
        "recipe": "rotation_curve", "force_pn": 0.3, "max_turns": 30, "step_turns": 15,
        "hold_s": 1.5, "force_table": TABLE})  # fmt: skip
    done = r.run(rot, timeout=300)
    assert done.returncode == 0, done.stderr
    data = r.read(r.output_file(tmp_path))
    plateaus = _plateaus(data)
    assert [p[0] for p in plateaus] == [b"-30 turns", b"-15 turns", b"0 turns", b"15 turns",
                                        b"30 turns", b"0 turns"]  # fmt: skip
    for bead in (0, 1):
        z, z_true, _, ext = _bead(data, bead)
        ok = np.isfinite(z) & np.isfinite(z_true)
        offset = np.median(z[ok] - z_true[ok])
        mean = {label: np.nanmean(z[f[60:]]) - offset for label, f in plateaus[:5]}
        true = {label: np.nanmean(ext[f[60:]]) for label, f in plateaus[:5]}
        assert true[b"30 turns"] < true[b"0 turns"] - 500  # past buckling: plectonemes
        assert true[b"-30 turns"] < true[b"0 turns"] - 500  # symmetric at 0.3 pN
        for label in (b"-30 turns", b"30 turns"):
            assert mean[label] < mean[b"0 turns"] - 300, (label, mean)

    for p in (tmp_path / "runs").glob("*"):
        p.unlink()
    ramp = _config(tmp_path, name="ramp", protocol={
        "recipe": "force_ramp", "start_pn": 0.5, "stop_pn": 10, "loading_rate_pn_s": 2.0,
        "force_table": TABLE})  # fmt: skip
    done = r.run(ramp, timeout=300)
    assert done.returncode == 0, done.stderr
    data = r.read(r.output_file(tmp_path))
    ev = data["events"]
    start, end = (ev[(ev["action"] == b"ramp") & (ev["kind"] == k)][0] for k in (b"start", b"end"))
    assert end["time"] - start["time"] == pytest.approx(4.75, abs=0.5)
    g = data["truth"]
    g = g[(g["bead_id"] == 0) & (g["frame"] >= start["frame"]) & (g["frame"] < end["frame"])]
    frames = data["frames"]
    stamp = dict(zip(frames["frame"], frames["timestamp"], strict=True))
    t = np.array([stamp[f] for f in g["frame"]]) - stamp[start["frame"]]
    factor = g["force_pn"][-1] / 10.0  # the bead's moment relative to the table's
    middle = (t > 0.1 * t[-1]) & (t < 0.9 * t[-1])  # the first command's latency aside
    fit = np.polyfit(t[middle], g["force_pn"][middle] / factor, 1)
    assert fit[0] == pytest.approx(2.0, rel=0.1)  # the loading rate, pN/s
    residual = g["force_pn"][middle] / factor - np.polyval(fit, t[middle])
    # constant dF/dt: a ramp straight in height between the same ends would be off by > 2 pN
    assert np.abs(residual).max() < 0.6, np.abs(residual).max()


SCRIPT_RAISES = """
def protocol(api):
    api.move_magnets(height_mm=3.0)
    api.hold(0.5, label="before the bug")
    api.mark("about to fail")
    raise ValueError("bad step in the user's script")
"""
SCRIPT_OUT_OF_MEMORY = """
def protocol(api):
    api.mark("about to fail")
    raise MemoryError
"""
SCRIPT_HANGS = """
def protocol(api):
    api.move_magnets(height_mm=3.0)
    api.mark("hanging now")
    while True:  # never returns, never looks at api.stopping
        pass
"""


@pytest.mark.parametrize(
    ("script", "extra", "message"),
    [
        (SCRIPT_RAISES, {}, "protocol script raised ValueError: bad step in the user's script"),
        (SCRIPT_OUT_OF_MEMORY, {}, "protocol script raised MemoryError"),
        (SCRIPT_HANGS, {"timeout_s": 3}, "the protocol script ran past its 3 s timeout"),
    ],
)
def test_a_failing_or_hanging_script_stops_the_run_cleanly(tmp_path, script, extra, message):
    (tmp_path / "p.py").write_text(script)
    cfg = _config(tmp_path, protocol={"script": "p.py", "end_height_mm": 8.0, **extra})
    done = r.run(cfg, timeout=120)
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, done.stderr
    assert ": ;" not in last  # an exception without a message says its type, no empty ": "
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "failed" and message in data["attrs"]["error"]
    labels = data["events"]["label"].tolist()
    assert b"hanging now" in labels or b"about to fail" in labels
    assert len(data["tracks"]) > 0 and len(data["frames"]) > 0  # what was acquired is saved
    log = r.output_file(tmp_path).with_suffix(".log").read_text()
    assert "Traceback" not in done.stderr  # on the terminal: one line
    if "raised" in message:
        assert "Traceback" in log and ", in protocol" in log  # the traceback: in the log


SCRIPT_LOOPS = """
import time

def protocol(api):
    api.mark("looping now")
    while True:  # never looks at api.stopping
        time.sleep(0.05)
"""


def test_ctrl_c_during_a_looping_script_stops_the_run_without_a_traceback(tmp_path) -> None:
    (tmp_path / "p.py").write_text(SCRIPT_LOOPS)
    proc = r.start(_config(tmp_path, protocol={"script": "p.py", "end_height_mm": 8.0}))
    r.wait_for_status(proc, "frames", 20)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "SystemExit" not in err and "Traceback" not in err, err
    assert proc.returncode == 0, err  # stopped by the user, as asked
    assert r.read(r.output_file(tmp_path))["attrs"]["state"] == "interrupted"


def test_ctrl_c_stops_the_protocol_and_parks_the_magnets(tmp_path) -> None:
    cfg = _config(tmp_path, protocol={"recipe": "force_clamp", "force_pn": 10,
                                      "duration_s": 60, "force_table": TABLE,
                                      "end_height_mm": 7.5})  # fmt: skip
    proc = r.start(cfg)
    r.wait_for_status(proc, "protocol_action", 2)  # holding at 10 pN
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "protocol 2/2 hold 60 s, " in err  # the status line: the step, how long it ran
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "interrupted"
    ev = data["events"]
    holds = ev[ev["action"] == b"hold"]
    assert holds["kind"].tolist() == [b"start", b"end"]  # the interrupted hold ends at the stop
    assert data["motors"]["magnet_height_mm"][-1] == pytest.approx(7.5)
    assert data["motors"]["magnet_height_mm"].min() < 2.5  # it had gone to 10 pN


@pytest.mark.parametrize(
    ("protocol", "message"),
    [
        ({"steps": [{"step": "wiggle"}]}, "wiggle"),
        ({"steps": [{"step": "magnets", "height_mm": 0.05}]}, "outside the limits"),
        ({"steps": [{"step": "magnets", "force_pn": 90}], "force_table": TABLE},
         "outside the force table"),
        ({"script": "missing.py"}, "protocol.script"),
        ({"script": "nofunc.py"}, "defines no function 'protocol'"),
    ],
)  # fmt: skip
def test_bad_protocols_refused_before_the_run(tmp_path, protocol, message) -> None:
    (tmp_path / "nofunc.py").write_text("def main(api):\n    pass\n")
    cfg = _config(tmp_path, protocol=protocol)
    for done in (r.cli("validate", str(cfg), cwd=tmp_path), r.run(cfg)):
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*.h5"))


def test_steps_move_the_focus_and_repeat(tmp_path) -> None:
    cfg = _config(tmp_path, protocol={"steps": [
        {"step": "focus", "z_nm": 6300},
        {"step": "hold", "seconds": 0.5, "label": "up"},
        {"step": "ramp", "axis": "focus", "stop": 6000, "rate": 600},
        {"step": "repeat", "times": 2, "steps": [
            {"step": "magnets", "rotation_turns": 2, "relative": True},
            {"step": "mark", "label": "turned"}]},
    ]})  # fmt: skip
    done = r.run(cfg, timeout=120)
    assert done.returncode == 0, done.stderr
    data = r.read(r.output_file(tmp_path))
    ev, motors = data["events"], data["motors"]
    starts = ev[ev["kind"] == b"start"]
    assert starts["action"].tolist() == [b"move", b"hold", b"ramp", b"move", b"mark", b"move",
                                         b"mark"]  # fmt: skip
    assert (np.diff(ev["frame"]) >= 0).all() and (np.diff(ev["time"]) >= 0).all()
    hold = ev[(ev["action"] == b"hold")]
    at_hold = motors[(motors["time"] > hold["time"][0]) & (motors["time"] < hold["time"][1])]
    assert np.allclose(at_hold["focus_z_nm"], 6300)
    ramp = ev[ev["action"] == b"ramp"]
    during = motors[(motors["time"] > ramp["time"][0]) & (motors["time"] < ramp["time"][1])]
    assert (np.diff(during["focus_z_nm"]) <= 0).all() and len(np.unique(during["focus_z_nm"])) > 3
    assert motors["focus_z_nm"][-1] == pytest.approx(6000)
    assert motors["magnet_rotation_turns"][-1] == pytest.approx(4.0)  # two relative +2 turns
