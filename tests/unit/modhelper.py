"""Run a module's main() in-process and return its JSON result."""

import io
import json
from contextlib import redirect_stdout

import pytest
from ansible.module_utils.testing import patch_module_args


def run_module(main, args: dict) -> dict:
    out = io.StringIO()
    with patch_module_args(args), redirect_stdout(out), pytest.raises(SystemExit):
        main()
    return json.loads(out.getvalue())
