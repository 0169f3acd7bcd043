"""The README's set-up commands are what CI runs, and they are exactly two."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    first_block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in first_block.splitlines() if line.strip()]


def test_ci_runs_exactly_the_readme_setup_commands():
    commands = setup_commands()
    assert len(commands) == 2
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci == commands
