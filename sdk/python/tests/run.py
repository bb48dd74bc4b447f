"""Runs the SDK's tests and ends with "sdk-python: N passed, M failed"
(the line scripts/test.sh sums up)."""

import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
suite = unittest.defaultTestLoader.discover(str(HERE), pattern="test_*.py", top_level_dir=str(HERE.parent))
result = unittest.TextTestRunner(verbosity=2).run(suite)
failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
skipped = len(result.skipped)
print(f"sdk-python: {result.testsRun - failed - skipped} passed, {failed + skipped} failed", flush=True)
sys.exit(1 if failed or skipped else 0)
