"""`python -m sandbox`: the sandbox CLI without the revsync entry point."""

from sandbox.cli import app

app(prog_name="sandbox")
