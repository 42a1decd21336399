"""ansible-test sanity and ansible-lint over the goship.core collection (no ignore files)."""

import re

from collection_copy import VENV_BIN, run_in_collection

ANSIBLE_TEST_TIMEOUT_S = 1200
ANSIBLE_LINT_TIMEOUT_S = 600
# ansible-test's "ERROR: path:line:col: ..." and ansible-lint's "rule[detail]: message".
FINDING_LINE = re.compile(r"^(ERROR|FATAL|[a-z][a-z0-9-]*(\[[a-z0-9-]+\])?):")


def failed_sanity_tests(output: str) -> list[str]:
    """Names ansible-test lists after its closing "FATAL: The N sanity test(s) listed below ... failed"."""
    marker = "sanity test(s) listed below"
    if marker not in output:
        return []
    return output.split(marker, 1)[1].splitlines()[1:]


def failure_report(result, headline: str, tail_lines=60) -> str:
    """A one-line headline (shown in pytest's summary), the tool's own findings (pip's install
    chatter buries them), then the output's tail."""
    lines = result.stdout.splitlines()
    findings = [line for line in lines if FINDING_LINE.match(line)]
    return "\n".join([
        f"{headline} (exit status {result.returncode})", "findings:", *findings,
        f"--- last {tail_lines} lines of output ---", *lines[-tail_lines:],
    ])


def test_ansible_test_sanity(sanity_collection):
    result = run_in_collection(
        [str(VENV_BIN / "ansible-test"), "sanity", "--python", "3.11", "--local", "--color", "no"],
        sanity_collection, ANSIBLE_TEST_TIMEOUT_S,
    )
    failed = ", ".join(failed_sanity_tests(result.stdout)) or "see output"
    assert result.returncode == 0, failure_report(result, f"ansible-test sanity failed: {failed}")
    assert "All targets skipped" not in result.stdout, failure_report(result, "ansible-test found no files to test")
    assert 'Running sanity test "pylint"' in result.stdout, failure_report(result, "ansible-test ran no pylint")


def test_ansible_lint(sanity_collection):
    result = run_in_collection(
        [str(VENV_BIN / "ansible-lint"), "--offline", "--nocolor"],
        sanity_collection, ANSIBLE_LINT_TIMEOUT_S,
    )
    assert result.returncode == 0, failure_report(result, "ansible-lint failed")
    assert "Passed:" in result.stdout, failure_report(result, "ansible-lint printed no result")
