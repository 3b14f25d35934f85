"""Build: `newsletter build` as a whole process against the official MJML CLI compiling the same MJML,
`newsletter --help`, the per-stage split in process, and warm rebuilds as the preview server does them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import NEWSLETTER, REPO, Sample, interleave, ratio_sample, time_process
from peers import mjml_cli

EXAMPLE = REPO / "editions" / "2025-09"


def make_project(root: Path) -> Path:
    """A throwaway project folder holding a copy of the example edition (the repo's files stay untouched)."""
    (root / "editions").mkdir(parents=True, exist_ok=True)
    shutil.copytree(EXAMPLE, root / "editions" / "2025-09",
                    ignore=shutil.ignore_patterns("build", "outbox", "journal*", ".tested"))
    shutil.copyfile(REPO / "theme.yaml", root / "theme.yaml")  # its postal address: send refuses the placeholder
    return root


def run(rounds: int = 7) -> dict:
    mjml = mjml_cli()
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="nl-bench-build-") as tmp:
        project = make_project(Path(tmp) / "project")
        out = Path(tmp) / "out"
        subprocess.run([NEWSLETTER, "build", "2025-09", "--out", str(out)], cwd=project, check=True,
                       stdout=subprocess.DEVNULL)
        email_mjml = out / "email.mjml"
        result["mjml_bytes"] = email_mjml.stat().st_size
        result["html_bytes"] = (out / "email.html").stat().st_size
        mjml_out = Path(tmp) / "mjml-cli.html"

        def proc(cmd):
            return lambda: time_process(cmd, cwd=project)[0]

        samples = interleave({
            "newsletter build": proc([NEWSLETTER, "build", "2025-09", "--out", str(out)]),
            "mjml CLI": proc([str(mjml), str(email_mjml), "-o", str(mjml_out)]),
            "npx mjml (the same CLI as the MJML docs start it)": lambda: time_process(
                ["npx", "--no-install", "mjml", str(email_mjml), "-o", str(mjml_out)], cwd=mjml.parents[2])[0],
            "newsletter --help": proc([NEWSLETTER, "--help"]),
            "python -c pass": proc([sys.executable, "-c", "pass"]),
        }, rounds=rounds)
        result["process"] = {k: v.as_dict() for k, v in samples.items()}
        result["build_vs_mjml"] = ratio_sample(samples["newsletter build"], samples["mjml CLI"]).as_dict()
        result["ratios_vs_mjml"] = {k: ratio_sample(v, samples["mjml CLI"]).as_dict() for k, v in samples.items()
                                    if k != "mjml CLI"}
        result["help_vs_python"] = ratio_sample(samples["newsletter --help"], samples["python -c pass"]).as_dict()
        result["mjml_cli_html_bytes"] = mjml_out.stat().st_size

        # In process, each in a fresh interpreter: with the premailer set-up (now) and without it (before).
        stages_runs: dict[str, list[dict]] = {"fixed": [], "unpatched": []}
        script = str(Path(__file__).parent / "build_stages.py")
        for r in range(rounds):
            for mode in (("fixed", "unpatched") if r % 2 == 0 else ("unpatched", "fixed")):
                cmd = [sys.executable, script, str(project), "--out", str(Path(tmp) / f"out-{mode}")]
                cmd += ["--unpatched-premailer"] if mode == "unpatched" else []
                data = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                stages_runs[mode].append(data)
        result["stages"] = {}
        for mode, runs in stages_runs.items():
            names = list(runs[0]["stages"])
            result["stages"][mode] = {n: Sample([run["stages"][n] for run in runs]).as_dict() for n in names}
            result["stages"][mode]["(the build command in process, total)"] = Sample([run["command"] for run in runs]).as_dict()
            result["stages"][mode]["(process start to built, total)"] = Sample([run["process_to_built"] for run in runs]).as_dict()
        result["output_identical"] = all(
            (Path(tmp) / "out-fixed" / name).read_bytes() == (Path(tmp) / "out-unpatched" / name).read_bytes()
            for name in ("email.html", "email.txt", "web.html"))
        fixed = stages_runs["fixed"]
        # Warm rebuilds: the median within each process, then the spread across processes.
        result["warm_build"] = Sample([sorted(r["warm_build"])[len(r["warm_build"]) // 2] for r in fixed]).as_dict()
        result["warm_unchanged"] = Sample([sorted(r["warm_unchanged"])[len(r["warm_unchanged"]) // 2] for r in fixed]).as_dict()
        result["warm_edited"] = Sample([sorted(r["warm_edited"])[len(r["warm_edited"]) // 2] for r in fixed]).as_dict()
        names = list(fixed[0]["warm_stages_edited"])
        result["warm_stages"] = {n: Sample([r["warm_stages_edited"][n] for r in fixed]).as_dict() for n in names}
        # The fix's effect on premailer's first transform, paired per round.
        pm = "inline CSS (premailer)"
        imp = "import premailer (cssutils, lxml, requests)"
        result["premailer_first_fixed_vs_unpatched"] = ratio_sample(
            Sample([r["stages"][pm] for r in stages_runs["fixed"]]),
            Sample([r["stages"][pm] for r in stages_runs["unpatched"]])).as_dict()
        result["premailer_import_fixed_vs_unpatched"] = ratio_sample(
            Sample([r["stages"][imp] for r in stages_runs["fixed"]]),
            Sample([r["stages"][imp] for r in stages_runs["unpatched"]])).as_dict()
    return result


if __name__ == "__main__":
    print(json.dumps(run(rounds=int(sys.argv[1]) if len(sys.argv) > 1 else 5), indent=1))
