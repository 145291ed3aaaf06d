"""The DICOM listener SIGKILLed half-way through a C-STORE ingest, at full size.

Runs the scenario of tests/e2e/test_dicom_kill.py (senders re-sending what was not
acknowledged, index and objects checked, orphans collected) and prints its figures::

    PYTHONPATH=. .venv/bin/python bench/kill_ingest.py --instances 1000 \\
        --database-url postgresql://.../empty_db --storage-url s3://KEY:SECRET@host:port/bucket?secure=false

The database must be empty (the schema is created by ``telemed serve``) and the bucket new.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.e2e.test_dicom_kill import PER_ASSOCIATION, run_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--storage-url", required=True)
    args = parser.parse_args()
    count = args.instances - args.instances % PER_ASSOCIATION
    with tempfile.TemporaryDirectory(prefix="kill-ingest-") as tmp:
        figures = run_scenario(args.database_url, args.storage_url, Path(tmp) / "var", count)
    print(f"instances sent:        {count}")
    print(f"acknowledged:          {figures.acknowledged}")
    print(f"re-sent:               {figures.resent}")
    print(f"orphans before/after:  {figures.orphans_before} / {figures.orphans_after}")
    print(f"seconds:               {figures.seconds:.1f}")


if __name__ == "__main__":
    main()
