"""End-to-end: `magacq run configs/genicam.yaml` on the genicam wheel's viky.cti, into HDF5."""

from pathlib import Path

import numpy as np

from tests.pipeline import _runner as r

CONFIG = r.REPO / "configs" / "genicam.yaml"


def test_magacq_run_genicam_config(viky: Path, tmp_path: Path) -> None:
    done = r.run(CONFIG, "--duration", "2", "--output", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr
    data = r.read(r.output_file(tmp_path))
    attrs = data["attrs"]
    assert attrs["state"] == "complete"
    assert attrs["frames_stored"] == len(data["frames"]) > 0
    assert np.all(np.diff(data["frames"]["frame"]) > 0)
    assert len(data["rois"]) == 1
    assert np.isin(data["tracks"]["frame"], data["frames"]["frame"]).all()
