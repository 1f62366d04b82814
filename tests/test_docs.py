"""The documentation stays true: README.md is a short front door (at most 12 KiB), every relative link
and #anchor in README.md and docs/*.md resolves, and every command they show names a script that exists
and uses only flags (and listed choices) that the script's argparse parser accepts. Nothing is run: the
parsers are taken from each script's ``parse_args`` without parsing anything."""
from __future__ import annotations

import argparse
import functools
import importlib.util
import re
import shlex
import unicodedata
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SCRIPTS = ROOT / "scripts"
README_MAX_BYTES = 12_288
IMAGE_MAX_BYTES = 150_000
SH_FORWARDS = {"run_all.sh": "run_all.py"}  # bash scripts/run_all.sh passes every option to run_all.py


def doc_files() -> List[Path]:
    return [README] + sorted(DOCS.glob("*.md"))


# --- Markdown: code blocks, inline code, headings ------------------------------------------------

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def split_fences(text: str) -> Tuple[str, List[str]]:
    """(the text with each fenced block's lines blanked, the blocks' contents)."""
    prose, blocks, block, fence = [], [], [], None
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence is None and m:
            fence, block = m.group(1), []
            prose.append("")
        elif fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip()[len(m.group(1)):]:
                blocks.append("\n".join(block))
                fence = None
            else:
                block.append(line)
            prose.append("")
        else:
            prose.append(line)
    if fence is not None:
        blocks.append("\n".join(block))  # an unclosed fence runs to the end, as in CommonMark
    return "\n".join(prose), blocks


CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)


def code_spans(prose: str) -> List[str]:
    """The contents of the inline code spans (a span may wrap onto the next line)."""
    return [" ".join(m.group(2).split()) for m in CODE_SPAN.finditer(prose)]


def without_code_spans(prose: str) -> str:
    return CODE_SPAN.sub(lambda m: "code", prose)


HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")


def heading_text(raw: str) -> str:
    """What GitHub shows of a heading's Markdown: link and image texts, code contents, no markup."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", raw)
    text = CODE_SPAN.sub(lambda m: m.group(2), text)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"(\*{1,3}|(?<!\w)_{1,3})(\S(?:.*?\S)?)\1(?!\w)", r"\2", text)
    return text


def github_slug_base(text: str) -> str:
    """GitHub's heading slug: lowercase; drop every character that is not a letter, mark, number,
    connector (``_``), space or hyphen; each space becomes a hyphen."""
    kept = "".join(c for c in text.strip().lower()
                   if unicodedata.category(c)[0] in "LMN" or unicodedata.category(c) == "Pc" or c in " -")
    return kept.replace(" ", "-")


def heading_anchors(path: Path) -> set:
    """Every anchor a Markdown file offers: its headings' slugs (a repeated slug gets -1, -2, ... as on
    GitHub) and the ids/names of its HTML anchors."""
    prose, _ = split_fences(path.read_text(encoding="utf-8"))
    seen: Dict[str, int] = {}
    anchors = set()
    for line in prose.split("\n"):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug = github_slug_base(heading_text(m.group(2)))
        while slug in seen:
            seen[base] += 1
            slug = f"{base}-{seen[base]}"
        seen[slug] = 0
        anchors.add(slug)
    anchors.update(re.findall(r"<a\s[^>]*(?:name|id)=\"([^\"]+)\"", prose))
    return anchors


# --- (a) links ---------------------------------------------------------------------------------

INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(\S+)", re.M)
HTML_REF = re.compile(r"<(?:a|img)\s[^>]*(?:href|src)=\"([^\"]+)\"")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")


def links(path: Path) -> Iterator[str]:
    prose, _ = split_fences(path.read_text(encoding="utf-8"))
    prose = without_code_spans(prose)
    for rx in (INLINE_LINK, REF_DEF, HTML_REF):
        for m in rx.finditer(prose):
            yield m.group(1).strip("<>")


def link_problems(path: Path, root: Path = ROOT) -> List[str]:
    """One line per relative link of ``path`` that leads nowhere: a missing file, a file outside
    ``root``, or an #anchor that no heading of the target makes."""
    problems = []
    for target in links(path):
        if SCHEME.match(target):
            continue  # http(s), mailto, ...: not checked (no network in tests)
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path.resolve()
        where = f"{path.name}: ({target})"
        if not dest.exists():
            problems.append(f"{where}: {file_part} does not exist")
            continue
        try:
            dest.relative_to(root.resolve())
        except ValueError:
            problems.append(f"{where}: leads outside the project")
            continue
        if not anchor:
            continue
        if dest.suffix.lower() == ".md":
            if unquote(anchor) not in heading_anchors(dest):
                problems.append(f"{where}: no heading of {dest.name} has the anchor #{anchor}")
        elif not re.fullmatch(r"L\d+(-L\d+)?", anchor):
            problems.append(f"{where}: #{anchor} in a file that is not Markdown")
    return problems


# --- (b) commands and flags --------------------------------------------------------------------

class _Parser(Exception):
    def __init__(self, parser):
        super().__init__("parser captured")
        self.parser = parser


@functools.lru_cache(maxsize=None)
def script_parser(script: str) -> argparse.ArgumentParser:
    """The argparse parser of ``scripts/<script>.py``, as its ``parse_args`` builds it; parsing is
    replaced by handing the parser back, so nothing is parsed and no work is done."""
    spec = importlib.util.spec_from_file_location(f"docs_script_{script}", SCRIPTS / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def capture(self, args=None, namespace=None):
        raise _Parser(self)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = capture
    try:
        module.parse_args([])
    except _Parser as found:
        return found.parser
    finally:
        argparse.ArgumentParser.parse_args = original
    raise AssertionError(f"scripts/{script}.py: parse_args() never called ArgumentParser.parse_args")


def option_problems(parser: argparse.ArgumentParser, tokens: List[str], where: str) -> List[str]:
    """Each ``--flag`` (or ``-x``) of ``tokens`` must be one of the parser's option strings (exactly:
    no abbreviations), and a literal value after a flag with choices must be one of them."""
    problems = []
    actions = parser._option_string_actions
    for i, token in enumerate(tokens):
        if not re.match(r"^--?[A-Za-z]", token):
            continue
        flag, eq, value = token.partition("=")
        action = actions.get(flag)
        if action is None:
            problems.append(f"{where}: {flag} is not an option of {parser.prog}")
            continue
        if not eq and i + 1 < len(tokens) and action.nargs != 0:
            value = tokens[i + 1]
        if action.choices and re.fullmatch(r"[\w.:-]+", value or "") and not value.startswith("-") \
                and value not in action.choices:
            problems.append(f"{where}: {flag} {value}: not one of {sorted(action.choices)}")
    return problems


SCRIPT_CALL = re.compile(r"(?:(?:python3?|bash|sh)\s+)?(?<![\w./-])scripts/([\w-]+\.(?:py|sh))\b")
SHELL_END = re.compile(r"\s(?:&&|\|\||;|\||>|2>|#)(?:\s|$)|[;)]\s*$")


def command_args(rest: str) -> List[str]:
    """The arguments after a script's path, up to the end of its shell command."""
    cut = SHELL_END.search(" " + rest + " ")
    rest = (" " + rest)[:cut.start()] if cut else rest
    try:
        return shlex.split(rest)
    except ValueError:  # an unbalanced quote in prose: the words are enough to find the flags
        return rest.split()


def snippets(path: Path) -> Iterator[Tuple[str, str]]:
    """(kind, text) of every code-block line (continuation lines joined) and inline code span."""
    prose, blocks = split_fences(path.read_text(encoding="utf-8"))
    for block in blocks:
        for line in re.sub(r"\\\n\s*", " ", block).split("\n"):
            yield "code block", line
    for span in code_spans(prose):
        yield "inline code", span


def all_options() -> Dict[str, argparse.Action]:
    """Every option string of every script's parser."""
    found: Dict[str, argparse.Action] = {}
    for script in sorted(SCRIPTS.glob("*.py")):
        found.update(script_parser(script.stem)._option_string_actions)
    return found


def command_problems(path: Path) -> List[str]:
    """One line per command of ``path`` that names a missing script or a flag it does not accept, and
    per inline ``--flag ...`` span whose flag no script accepts."""
    problems = []
    for kind, text in snippets(path):
        where = f"{path.name} ({kind}) `{text}`"
        calls = list(SCRIPT_CALL.finditer(text))
        for m in calls:
            name = m.group(1)
            if not (SCRIPTS / name).is_file():
                problems.append(f"{where}: scripts/{name} does not exist")
                continue
            target = SH_FORWARDS.get(name, name)
            if not target.endswith(".py"):
                continue
            if name in SH_FORWARDS:
                assert target in (SCRIPTS / name).read_text(encoding="utf-8"), f"scripts/{name} no longer runs {target}"
            problems += option_problems(script_parser(target[:-3]), command_args(text[m.end():]), where)
        if not calls and kind == "inline code" and text.startswith("--"):
            union = argparse.ArgumentParser(prog="any script", add_help=False)
            union._option_string_actions = all_options()
            problems += option_problems(union, command_args(text), where)
    return problems


# --- the tests ---------------------------------------------------------------------------------

def test_readme_is_a_short_front_door():
    size = README.stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size:,} bytes (at most {README_MAX_BYTES:,}): move details to docs/"


def test_readme_keeps_the_ci_test_command():
    """.ci/run runs the README's test command; the README shows it as a line of its own."""
    _, blocks = split_fences(README.read_text(encoding="utf-8"))
    assert any(line.strip() == "python -m pytest -q" for block in blocks for line in block.split("\n"))
    assert "python -m pytest -q" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_docs_file_is_linked_from_the_readme():
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in links(README) if not SCHEME.match(t)}
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"docs not linked from README.md: {missing}"


def test_docs_images_are_small():
    for image in (DOCS / "img").glob("*"):
        assert image.stat().st_size < IMAGE_MAX_BYTES, image


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(doc):
    assert not link_problems(doc), "\n".join(link_problems(doc))


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_command_names_a_script_and_flags_it_accepts(doc):
    problems = command_problems(doc)
    assert not problems, "\n".join(problems)


def test_the_readme_shows_commands_that_get_checked():
    """The check is not vacuous: the README's commands are found and their parsers read."""
    texts = [t for _, t in snippets(README)]
    assert any("bash scripts/run_all.sh --demo" in t for t in texts)
    assert any("python scripts/download_caltech101.py" in t for t in texts)
    assert "--demo" in script_parser("run_all")._option_string_actions


def test_github_slugs():
    assert github_slug_base(heading_text("What happens when…")) == "what-happens-when"
    assert github_slug_base(heading_text("Training crops: fresh (default) or `--views N` (approximate)")) \
        == "training-crops-fresh-default-or---views-n-approximate"
    assert github_slug_base(heading_text("The benchmark table (2026-11-24)")) == "the-benchmark-table-2026-11-24"
    assert github_slug_base(heading_text("First run: `scripts/gpu_check.py`")) == "first-run-scriptsgpu_checkpy"
    assert github_slug_base(heading_text("9. 加分项：修改 Transformer 块——门控 adapter 与 LoRA")) \
        == "9-加分项修改-transformer-块门控-adapter-与-lora"
    assert github_slug_base(heading_text("**Bold** and [a link](x.md)")) == "bold-and-a-link"


def test_the_checks_fail_on_broken_links_and_flags(tmp_path):
    """Each kind of mistake is caught by the same helpers the tests above use."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## Same\n\n## Same\n", encoding="utf-8")
    doc = tmp_path / "docs" / "page.md"
    doc.write_text(
        "# A page\n\n## What happens when…\n\n"
        "Good: [x](other.md), [y](other.md#same-1), [z](#what-happens-when), [w](#a-page), <https://example.org>.\n"
        "Bad: [missing](nowhere.md), [anchor](other.md#same-2), [self](#what-happens-when-1), "
        "[outside](../outside.md), `[in code](not-checked.md)`.\n\n"
        "```bash\n"
        "python scripts/train_coop.py --shots 4 --seed 1 \\\n    --no-such-flag 3\n"
        "bash scripts/run_all.sh --demo --protocol some && python scripts/nope.py --x\n"
        "python scripts/zeroshot.py --templates ensemble --out r.json  # --comment-flag is not a flag\n"
        "```\n\n"
        "Inline: `python scripts/plot.py --results results --colour red`, `--precision fp64`, `--views N`.\n",
        encoding="utf-8")
    (tmp_path / "outside.md").write_text("# outside\n", encoding="utf-8")
    got = "\n".join(link_problems(doc, root=tmp_path / "docs"))
    assert "nowhere.md does not exist" in got
    assert "#same-2" in got and "#what-happens-when-1" in got
    assert "leads outside the project" in got
    assert "not-checked" not in got and "(other.md)" not in got and "#same-1" not in got and "(#a-page)" not in got
    assert len(link_problems(doc, root=tmp_path / "docs")) == 4
    got = command_problems(doc)
    text = "\n".join(got)
    assert "--no-such-flag is not an option" in text
    assert "--protocol some: not one of" in text
    assert "scripts/nope.py does not exist" in text
    assert "--colour is not an option" in text
    assert "--precision fp64: not one of" in text
    assert "--comment-flag" not in text and "--templates" not in text and "--views" not in text
    assert len(got) == 5, got
