"""Executes every notebook in notebooks/ against a run directory, so they never rot.

Usage: run_notebooks.py RUN_DIR
Each notebook reads the run directory from the READINESS_RUN environment variable. A cell that
raises fails the script (non-zero exit) with the notebook's name and the error.
"""

import os
import pathlib
import sys

import nbformat
from nbclient import NotebookClient


def main():
    run = pathlib.Path(sys.argv[1]).resolve()
    os.environ["READINESS_RUN"] = str(run)
    os.environ.setdefault("MPLBACKEND", "Agg")
    notebooks = sorted((pathlib.Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        print(f"executed {path.name}: {len(nb.cells)} cells")
    print(f"notebooks executed: {len(notebooks)}")


if __name__ == "__main__":
    main()
