"""The runaway-template table: each template stops within 2 CPU seconds and 256 MB.

Each case renders in a fresh Python process through the engine's own render path
(render_limited: the render pool and its render process). That process is started by a
small measuring process, which reads the CPU time and peak memory (ru_maxrss) of
everything below it with getrusage(RUSAGE_CHILDREN): the rendering process and the render
process it started. The bounds are CPU time, so they hold on a loaded machine; the wall
clock only guards against a hang.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

CPU_SECONDS = 2.0
PEAK_BYTES = 256 * 1024 * 1024
HANG_SECONDS = 120

RENDER = textwrap.dedent(
    """
    import json, sys
    from partnercast.campaigns.sandbox import render_limited, template_environment
    from partnercast.core.errors import TemplateError
    source = sys.stdin.read()
    try:
        text = render_limited(template_environment({"t.html": source}), "t.html", {})
        print(json.dumps({"kind": "rendered", "message": text[:200]}))
    except TemplateError as error:
        print(json.dumps({"kind": type(error).__name__, "message": str(error)}))
    """
)

MEASURE = textwrap.dedent(
    """
    import json, resource, subprocess, sys
    source = sys.stdin.read()
    done = subprocess.run([sys.executable, "-c", sys.argv[1]], input=source,
                          capture_output=True, text=True)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({
        "outcome": done.stdout.strip().splitlines()[-1:] or [done.stderr[-2000:]],
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak": usage.ru_maxrss * 1024,
    }))
    """
)

# (template, the exception the caller gets, what its message says)
RUNAWAY = [
    pytest.param("{{ 10 ** (10 ** 8) }}", "TemplateError", "number is too large", id="huge-power"),
    pytest.param(
        "{{ (10 ** 1000) ** 1000 }}", "TemplateError", "number is too large", id="power-of-a-power"
    ),
    pytest.param(
        "{{ (10 ** 20000) * (10 ** 20000) }}", "TemplateError", "too large", id="huge-product"
    ),
    pytest.param("{{ range(10 ** 10)|list }}", "TemplateError", "Range too big", id="huge-range"),
    pytest.param(
        "{{ range(100000)|join('x' * 1000) }}", "TemplateError", "over 2,000,000", id="range-join"
    ),
    pytest.param("{{ 'x' * 10 ** 9 }}", "TemplateError", "repeats a value", id="string-times"),
    pytest.param("{{ ([1] * 1000) * 100000 }}", "TemplateError", "repeats", id="list-times"),
    pytest.param(
        "{% set l = [0] * 1000000 %}{{ l.extend(l) }}{{ l.extend(l) }}",
        "TemplateError",
        "list over",
        id="list-doubling",
    ),
    pytest.param(
        "{% set a = 'x' * 1500000 %}{{ a ~ a ~ a }}", "TemplateError", "over 2,000,000", id="concat"
    ),
    pytest.param("{{ lipsum(10 ** 6) }}", "TemplateError", "lipsum", id="lipsum"),
    pytest.param(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "TemplateError",
        "loops more than",
        id="nested-loops",
    ),
    pytest.param(
        "{% for i in range(1000) %}{% for j in range(190) %}{{ ('ab ' * 3000)|wordcount }}"
        "{% endfor %}{% endfor %}",
        "RenderBudgetExceeded",
        "took more than 1 second of CPU time",
        id="slow-loop",
    ),
    pytest.param("{{ 'a'|center(10 ** 9) }}", "TemplateError", "too large", id="center"),
    pytest.param(
        "{{ ('a\\n' * 100000)|indent(1000) }}", "TemplateError", "over 2,000,000", id="indent"
    ),
    pytest.param("{{ 'a'.ljust(10 ** 9) }}", "TemplateError", "format width", id="ljust"),
    pytest.param(
        "{{ ('\\t' * 1000).expandtabs(100000) }}", "TemplateError", "format width", id="expandtabs"
    ),
    pytest.param(
        "{{ '{:>999999999}'.format('a') }}", "TemplateError", "format width", id="format-width"
    ),
    pytest.param(
        "{{ '{:>{}}'.format('a', 10 ** 9) }}", "TemplateError", "format width", id="nested-width"
    ),
    pytest.param(
        "{{ '{:.999999999f}'.format(1.5) }}", "TemplateError", "format width", id="precision"
    ),
    pytest.param("{{ '%999999999s' % 'a' }}", "TemplateError", "format width", id="percent-width"),
    pytest.param(
        "{{ '%*s'|format(10 ** 9, 'a') }}", "TemplateError", "format width", id="format-filter"
    ),
    pytest.param(
        "{{ ('x' * 100000)|replace('x', 'y' * 1000) }}", "TemplateError", "over", id="replace"
    ),
    pytest.param(
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "TemplateError", "recursion", id="macro"
    ),
    pytest.param(
        "{% for i in range(100000) %}{{ 'x' * 60 }}{% endfor %}",
        "TemplateError",
        "output is over",
        id="gigabytes-out",
    ),
    # Past every check of the sandbox: only the render process's hard limits stop these.
    pytest.param(
        "{% set s = 'x' * 1999999 %}{{ ([s] * 200)|map('upper')|join }}",
        "RenderBudgetExceeded",
        "more than 256 MB of memory",
        id="memory-bomb-past-the-checks",
    ),
    pytest.param(
        "{{ ('a ' * 999999)" + "|wordwrap(1)" * 20 + "|length }}",
        "RenderBudgetExceeded",
        "took more than 1 second of CPU time",
        id="one-long-call-past-the-checks",
    ),
]


@pytest.mark.parametrize(("source", "kind", "reason"), RUNAWAY)
def test_runaway_template_stops_within_two_cpu_seconds_and_256_mb(
    source: str, kind: str, reason: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, RENDER],
        input=source,
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
    )
    measured = json.loads(done.stdout)
    outcome = json.loads(measured["outcome"][0])
    assert outcome["kind"] == kind, outcome
    assert reason in outcome["message"], outcome
    assert outcome["message"].startswith("t.html: "), outcome
    assert measured["cpu"] <= CPU_SECONDS, measured
    assert measured["peak"] <= PEAK_BYTES, measured


def test_the_measure_sees_the_render_process() -> None:
    """The measuring process counts the render process's memory, not only its own."""
    source = "{% set s = 'x' * 1999999 %}{{ ([s] * 20)|map('upper')|join|length }}"
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, RENDER],
        input=source,
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
    )
    measured = json.loads(done.stdout)
    outcome = json.loads(measured["outcome"][0])
    assert outcome == {"kind": "rendered", "message": "39999980"}
    assert measured["peak"] > 80 * 1024 * 1024  # the 40 MB join and its 4 MB pieces, twice
