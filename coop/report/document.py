"""The report as a document: its generated blocks filled from records and measurements, whole.

    write_report("results", "report/REPORT.md")   # the whole report, rendered from the template and the records
    write_report("results/demo", "/tmp/demo.md")  # the same for the demo, beside its records
    write_committed_report()                      # report/REPORT.md from results/ (its status before a real run)

report/REPORT.template.md is the hand-written text with marked blocks, each rendered by code: section 7's
results (the status before a real run, :mod:`coop.report.status`; the generated results after it,
:mod:`coop.report.results_part`), appendix D's base-to-new part (:mod:`coop.report.base2new_section`),
appendix C's compute cost (:mod:`coop.report.cost`) and appendix A's departures. A report is the template
with its blocks filled and the markers gone: report/REPORT.md (what a student hands in) and the demo's
``REPORT_demo.md``, whose links point back to report/ so that every "第 N 节" it names is in it. A file
that holds the markers itself (a user's own marked copy) has only its blocks replaced. Numbers from
random weights carry a banner and are refused for report/REPORT.md, the template and any file with the
markers; figures go into ``figures/`` beside the output.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Dict, Optional

from ..runs.results import any_random, load_results
from ..utils.atomic import write_text
from ..utils.errors import UserError
from ..utils.paths import PROJECT_ROOT, REPORT, REPORT_TEMPLATE
from .base2new_section import B2N_BEGIN, B2N_END, STATUS as B2N_STATUS, base2new_folder, base2new_part
from .conclusion import ABSTRACT_BEGIN, ABSTRACT_END, ABSTRACT_STATUS, abstract_status
from .conclusion import BEGIN as CONCLUSION_BEGIN, END as CONCLUSION_END, STATUS as CONCLUSION_STATUS, conclusion
from .expectations import BEGIN as EXPECT_BEGIN, END as EXPECT_END, STATUS as EXPECT_STATUS, expectations
from .comparisons import noninferiority_tests
from .fmt import rel_link
from .outputs import BEGIN, END, GENERATED_LINE
from .results_part import BANNER, BANNER_REAL_DATA, banner, is_demo, results_part  # noqa: F401  (re-exported)
from .tables import _all_records

log = logging.getLogger(__name__)

REPO_REPORT = REPORT
COST_BEGIN, COST_END = "<!-- cost:begin -->", "<!-- cost:end -->"
DEPARTURES_BEGIN, DEPARTURES_END = "<!-- departures-zh:begin -->", "<!-- departures-zh:end -->"
# The English tables live in docs/recipe.md and docs/baselines.md, between these markers.
DOCS_RECIPE = PROJECT_ROOT / "docs" / "recipe.md"
RECIPE_BEGIN, RECIPE_END = "<!-- departures:begin -->", "<!-- departures:end -->"
DOCS_BASELINES = PROJECT_ROOT / "docs" / "baselines.md"
B2N_DEPARTURES_BEGIN, B2N_DEPARTURES_END = "<!-- base2new-departures:begin -->", "<!-- base2new-departures:end -->"
BASELINES_BEGIN, BASELINES_END = "<!-- baseline-departures:begin -->", "<!-- baseline-departures:end -->"
MARKERS = ((BEGIN, END), (B2N_BEGIN, B2N_END), (COST_BEGIN, COST_END), (DEPARTURES_BEGIN, DEPARTURES_END),
           (EXPECT_BEGIN, EXPECT_END), (CONCLUSION_BEGIN, CONCLUSION_END), (ABSTRACT_BEGIN, ABSTRACT_END))


def shown_path(path: Path) -> str:
    """A results folder as the report names it: relative to the project when inside it, else its name."""
    try:
        return Path(path).resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return Path(path).name


def replace_block(text: str, begin: str, end: str, body: str) -> str:
    """``text`` with everything strictly between ``begin`` and ``end`` replaced by ``body`` (the markers
    and all text outside them kept byte for byte)."""
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < 0 or j < i or text.count(begin) != 1 or text.count(end) != 1:
        raise UserError(f"the markers must appear once each, {begin} before {end}")
    return text[:i + len(begin)] + "\n" + body.strip("\n") + "\n" + text[j:]


def replace_between_markers(text: str, body: str) -> str:
    """The results block of ``text`` replaced by ``body``."""
    return replace_block(text, BEGIN, END, body)


def block(text: str, begin: str, end: str) -> str:
    """The text between two markers (stripped of surrounding newlines)."""
    return text.split(begin)[1].split(end)[0].strip("\n")


def departures_block(text: str) -> str:
    return block(text, DEPARTURES_BEGIN, DEPARTURES_END)


def has_markers(path: Path) -> bool:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return BEGIN in text and END in text


def _loaded_random(loaded: Dict[str, Any], b2n: Optional[Path]) -> bool:
    from .base2new import load_base2new

    return any_random(loaded) or any(r.get("random_weights") for rs in (load_base2new(b2n) if b2n else {}).values()
                                     for r in rs)


def check_may_write(loaded: Dict[str, Any], out: Path, b2n: Optional[Path] = None) -> None:
    """Random-weight numbers never go into the report: refuse ``report/REPORT.md`` and any file that
    holds the results markers (a report whose results part they would replace)."""
    if not _loaded_random(loaded, b2n):
        return
    out = Path(out)
    if out.resolve() in (REPO_REPORT.resolve(), REPORT_TEMPLATE.resolve()) or has_markers(out):
        raise UserError(f"refusing to write numbers from RANDOM weights into {out}: they are not accuracies "
                        f"of CLIP or CoOp. Write the demo report elsewhere (e.g. --out results/demo/REPORT_demo.md)")


def _relink(text: str, src: Path, out: Path, copies: Dict[str, tuple]) -> str:
    """The relative links of a text written for ``src``'s folder, pointed at the same files from ``out``'s;
    the hand-made figures and tables of ``src``'s ``figures/`` are to be copied beside ``out`` (a rendering
    is whole in its own folder): ``copies`` gets {new link: (file, copy)}, copied by :func:`_copy_linked`."""
    figures = src.parent / "figures"

    def fix(m: re.Match) -> str:
        link = m.group(1)
        if re.match(r"^[a-z]+:", link) or link.startswith("#"):
            return m.group(0)
        path, _, anchor = link.partition("#")
        target = src.parent / path
        if target.parent.resolve() == figures.resolve() and target.is_file():
            copy = Path(out).parent / "figures" / target.name
            copies[f"]({rel_link(copy, out)}"] = (target, copy)
            target = copy
        return f"]({rel_link(target, out)}{'#' + anchor if anchor else ''})"
    return re.sub(r"\]\(([^)\s]+)\)", fix, text)


def _copy_linked(text: str, copies: Dict[str, tuple]) -> None:
    """Copy the hand-made files the finished rendering still links (not those of blocks it replaced)."""
    import shutil

    for link, (target, copy) in copies.items():
        if link in text and copy.resolve() != target.resolve():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, copy)


def strip_markers(text: str) -> str:
    """The filled template as a reader sees it: the blocks' markers gone, their contents kept."""
    for begin, end in MARKERS:
        text = text.replace(begin + "\n", "").replace(end + "\n", "").replace(begin, "").replace(end, "")
    return text


HEADER = (f"{GENERATED_LINE} from report/REPORT.template.md; edit the template or the code, "
          "not this file -->")


def _standalone(text: str, loaded: Dict[str, Any], rw: bool, header: bool = True) -> str:
    """A whole report from the filled template: markers removed, a banner and a title that say what the
    numbers are when they are not CLIP's; ``header``: a first line naming the template (not in
    report/REPORT.md, the file handed in, which is known as ours by its place)."""
    text = strip_markers(text)
    text = re.sub(r"^(?:<!-- table:[\w-]+ -->|" + re.escape(GENERATED_LINE) + r"[^\n]*-->)\n(?:\n(?=\S))?", "", text,
                  flags=re.M)  # no HTML comment inside what a reader reads (the header, if any, says where it came from)
    if rw:
        demo = is_demo(loaded)
        text = re.sub(r"^# (.*)$", lambda m: f"# {m.group(1)}（{'演示渲染：合成数据、随机权重' if demo else '随机权重的渲染'}，"
                                               "数字不是 CLIP 或 CoOp 的准确率）", text, count=1, flags=re.M)
    head = [banner(loaded), ""] if rw else []
    return "\n".join(head + ([HEADER, ""] if header else [])) + text


def render(results: Path, out: Path, template: str, figures: bool = True) -> str:
    """``template`` with its results and base-to-new blocks filled from ``results``; a whole standalone
    report when ``out`` is not ``template``'s own file (it has no markers)."""
    loaded = load_results(results)
    b2n = base2new_folder(results)
    standalone = not has_markers(out)
    if not _all_records(loaded) and b2n is None:
        raise UserError(f"no result files in {results}: run scripts/zeroshot.py and scripts/train_coop.py "
                        f"(or bash scripts/run_all.sh, or --protocol base2new) first")
    rw = _loaded_random(loaded, b2n)
    tests = noninferiority_tests(loaded)  # section 9.4's test: once per rendering, for sections 7.9, 7.10 and 8
    copies: Dict[str, tuple] = {}
    text = _relink(template, REPORT_TEMPLATE, out, copies) if standalone else template  # hand-written links, from out's folder
    if _all_records(loaded):
        body = results_part(loaded, out, results, figures=figures, source=shown_path(results), tests=tests)
        text = replace_block(text, BEGIN, END, "\n".join(body))
    elif standalone:
        text = replace_block(text, BEGIN, END, f"（{shown_path(results)} 里没有全部类别的运行记录，本节没有可生成的内容。）\n\n"
                                               "图 7.1：作业要求的图，需要零样本与 CoOp 在全部类别上的运行，这里没有。")
    text = replace_block(text, B2N_BEGIN, B2N_END, "\n".join(base2new_part(b2n, out, figures)) if b2n else B2N_STATUS)
    if ABSTRACT_BEGIN in text:  # (a user's marked copy from before these blocks keeps working)
        text = replace_block(text, ABSTRACT_BEGIN, ABSTRACT_END, abstract_status(loaded))
    if EXPECT_BEGIN in text:  # a user's marked copy from before section 8 had this block keeps working
        text = replace_block(text, EXPECT_BEGIN, EXPECT_END, "\n".join(expectations(loaded, tests)))
    text = replace_block(text, CONCLUSION_BEGIN, CONCLUSION_END, "\n".join(conclusion(loaded, tests)))
    if not standalone:
        return text
    _copy_linked(text, copies)
    return _standalone(text, loaded, rw, header=Path(out).resolve() != REPO_REPORT.resolve())


def write_report(results: str | os.PathLike, out: str | os.PathLike, figures: bool = True) -> Path:
    """Render the records of ``results`` into ``out`` (between its markers if it has them, else a whole
    report from report/REPORT.template.md) atomically. Returns ``out``."""
    results, out = Path(results), Path(out)
    loaded = load_results(results)
    check_may_write(loaded, out, base2new_folder(results))
    template = out.read_text(encoding="utf-8") if has_markers(out) else REPORT_TEMPLATE.read_text(encoding="utf-8")
    write_text(out, render(results, out, template, figures=figures))
    log.info("wrote %s", out)
    return out


def write_committed_report(results: Optional[Path] = None) -> Path:
    """report/REPORT.md, what a student hands in: rendered from ``results`` (default ``results/``) when it holds
    real-weight records of the whole sweep, else the template's status (before a real run) without its markers."""
    from ..utils.paths import RESULTS

    results = Path(results or RESULTS)
    loaded = load_results(results) if results.is_dir() else None
    b2n = base2new_folder(results) if loaded is not None else None
    if loaded is not None and (_all_records(loaded) or b2n) and not _loaded_random(loaded, b2n):
        return write_report(results, REPO_REPORT)
    write_text(REPO_REPORT, strip_markers(REPORT_TEMPLATE.read_text(encoding="utf-8")))
    return REPO_REPORT


def report_path(results: Path, random_weights: bool) -> Path:
    """Where a sweep's report goes: report/REPORT.md for ``results/`` with real weights, else beside the
    records (``REPORT_demo.md`` for random weights, ``REPORT.md`` for real ones elsewhere)."""
    from ..utils.paths import RESULTS

    if random_weights:
        return Path(results) / "REPORT_demo.md"
    return REPORT if Path(results).resolve() == RESULTS.resolve() else Path(results) / "REPORT.md"


def sweep_report(results: Path) -> tuple:
    """``(path, fingerprint)`` of the one report a sweep of either protocol writes: where it goes
    (:func:`report_path`) and what it would show -- the run ids of the few-shot records and of the
    base-to-new ones (``RESULTS/base2new``), so it is redone whenever either changes."""
    from ..runs.selection import fingerprint
    from .base2new import load_base2new

    loaded, b2n = load_results(results), base2new_folder(results)
    b2n_ids = sorted(f"{g}:{r.get('run_id')}" for g, rs in (load_base2new(b2n) if b2n else {}).items() for r in rs)
    shown = hashlib.sha256(json.dumps([fingerprint(loaded), b2n_ids]).encode()).hexdigest()
    return report_path(results, _loaded_random(loaded, b2n)), shown


def _between(path: str | os.PathLike, begin: str, end: str, body: str) -> None:
    text = Path(path).read_text(encoding="utf-8")
    write_text(path, replace_block(text, begin, end, body))


def refresh_departures(path: str | os.PathLike = REPORT_TEMPLATE, recipe: Optional[str | os.PathLike] = None,
                       baselines: Optional[str | os.PathLike] = None) -> None:
    """Render the departures from the original code between the report's departures markers (appendix A,
    in Chinese and short: :func:`coop.report.departures_zh.appendix_departures_zh`) and, with ``recipe``,
    CoOp's list (:data:`coop.methods.departures.DEPARTURES`) between those of docs/recipe.md
    (:data:`DOCS_RECIPE`, in English, with reasons): one list, two languages. The baselines' list
    (:func:`coop.methods.baseline_departures.baseline_departures`) goes into ``baselines`` (English;
    default: the baselines.md beside ``recipe``, when it exists), and the base-to-new protocol's list into
    the base2new.md beside ``recipe``, when it has the markers."""
    from ..methods.departures import baselines_markdown_en, markdown_en
    from .departures_zh import appendix_departures_zh

    _between(path, DEPARTURES_BEGIN, DEPARTURES_END, appendix_departures_zh())
    if recipe is not None:
        _between(recipe, RECIPE_BEGIN, RECIPE_END, markdown_en())
        if baselines is None and Path(recipe).with_name("baselines.md").exists():
            baselines = Path(recipe).with_name("baselines.md")
    if baselines is not None:
        _between(baselines, BASELINES_BEGIN, BASELINES_END, baselines_markdown_en())
    b2n = Path(recipe).with_name("base2new.md") if recipe is not None else None
    if b2n is not None and b2n.exists() and B2N_DEPARTURES_BEGIN in b2n.read_text(encoding="utf-8"):
        from ..methods.departures import base2new_markdown_en

        _between(b2n, B2N_DEPARTURES_BEGIN, B2N_DEPARTURES_END, base2new_markdown_en())  # the protocol's list


def refresh_generated(path: str | os.PathLike, cost: str) -> None:
    """The blocks of ``path`` that need no run: the compute cost ``cost`` (:func:`coop.report.cost.cost_markdown`
    of results/realsize.json and results/bench.json), and -- while they hold no generated results -- the
    status of section 7 and of appendix D."""
    from .status import status_markdown

    text = Path(path).read_text(encoding="utf-8")
    text = replace_block(text, COST_BEGIN, COST_END, cost)
    if GENERATED_LINE not in block(text, BEGIN, END):
        text = replace_block(text, BEGIN, END, status_markdown())
    if block(text, B2N_BEGIN, B2N_END).startswith("**尚无") or not block(text, B2N_BEGIN, B2N_END):
        text = replace_block(text, B2N_BEGIN, B2N_END, B2N_STATUS)
    if GENERATED_LINE not in block(text, BEGIN, END):
        text = replace_block(text, EXPECT_BEGIN, EXPECT_END, EXPECT_STATUS)
        text = replace_block(text, ABSTRACT_BEGIN, ABSTRACT_END, ABSTRACT_STATUS)
        text = replace_block(text, CONCLUSION_BEGIN, CONCLUSION_END, CONCLUSION_STATUS)
    write_text(path, text)
