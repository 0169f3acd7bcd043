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


# Numbers in the README that are not measurements: versions, byte positions, formats, a citation's year.
NOT_FIGURES = {"1.0.1", "2.0.8", "3.11", "3.12", "189", "193", "255", "65535", "2020"}


def readme_figures(text: str) -> set[str]:
    """The numbers of the README's prose: code blocks, code spans and link targets left out."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    prose = re.sub(r"`[^`]*`", "", prose)
    prose = re.sub(r"\]\([^)]*\)", "]", prose)
    return set(re.findall(r"(?<![\w.])\d+(?:[.,]\d+)*", prose)) - NOT_FIGURES


def test_readme_figures_finds_prose_numbers_only():
    text = "Scores 0.75 in 12 min (`--size 128`), [see](RESULTS.md#run-2) and\n```bash\npython x.py --folds 5\n```\n"
    assert readme_figures(text) == {"0.75", "12"}


def test_every_figure_in_the_readme_is_in_results():
    """Issue 19: the README's figures come from RESULTS.md, where their history and commands are.
    Checked as text, so it binds decimals and large numbers; a small integer is found anywhere."""
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    missing = sorted(n for n in readme_figures((ROOT / "README.md").read_text()) if n not in results)
    assert not missing, f"figures in README.md that benchmarks/RESULTS.md does not hold: {missing}"
