"""The sandbox: partner text is inert, and runaway templates are stopped with a clear error."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from markupsafe import Markup

from partnercast.campaigns.partner_text import partner_text, template_syntax_problems
from partnercast.campaigns.render_pool import shared_pool
from partnercast.campaigns.sandbox import (
    RenderBudgetExceeded,
    RenderLimits,
    render_limited,
    template_environment,
)
from partnercast.core.errors import TemplateError
from partnercast.plugins.personalization import Personalizer, marker


def render(source: str, context: dict | None = None, limits: RenderLimits | None = None) -> str:
    environment = template_environment({"t.mjml": source})
    return render_limited(environment, "t.mjml", context or {}, limits)


def test_slow_template_hits_the_deadline() -> None:
    source = "{% for i in range(100000) %}{{ i|string|length }}{% endfor %}" * 50
    with pytest.raises(RenderBudgetExceeded, match=r"more than 0\.05 seconds of CPU time"):
        render(source, limits=RenderLimits(seconds=0.05, iterations=10_000_000))


def test_a_template_error_is_not_a_budget_and_names_its_line() -> None:
    with pytest.raises(
        TemplateError, match=r"^t\.mjml: line 2: division by zero \(ZeroDivisionError\)$"
    ) as caught:
        render("fine\n{{ 1/0 }}")
    assert not isinstance(caught.value, RenderBudgetExceeded)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        # Stopped by the kernel in the middle of one filter call (no check runs there).
        pytest.param("{{ ('a ' * 999999)" + "|wordwrap(1)" * 20 + "|length }}", "CPU", id="cpu"),
        # Out of address space: a MemoryError, after which the render process leaves.
        pytest.param(
            "{% set s = 'x' * 1999999 %}{{ ([s] * 200)|map('upper')|join }}", "MB", id="memory"
        ),
    ],
)
def test_the_next_render_after_a_runaway_gets_a_fresh_process(source: str, reason: str) -> None:
    with pytest.raises(RenderBudgetExceeded, match=reason):
        render(source, limits=RenderLimits(seconds=0.2))
    assert render("{{ 6 * 7 }}") == "42"


def test_plugin_filters_run_in_the_engine_on_plain_values() -> None:
    """The render process calls back for plugin filters: any callable works, Markup stays
    Markup, and a filter's own failure is the template's error line, not a traceback."""

    def boom(value: object) -> str:
        raise ValueError(f"cannot shout {value}")

    filters = {"shout": lambda value: value.upper(), "boom": boom, "keys": lambda m: sorted(m)}
    environment = template_environment(
        {"t.html": "{{ text|shout }} {{ safe|shout }} {{ {'b': 1, 'a': [2]}|keys }}"},
        filters=filters,
    )
    context = {"text": "<i>", "safe": Markup("<b>ok</b>")}
    assert (
        render_limited(environment, "t.html", context)
        == "&lt;I&gt; <B>OK</B> [&#39;a&#39;, &#39;b&#39;]"
    )
    failing = template_environment({"t.html": "fine\n{{ 'x'|boom }}"}, filters=filters)
    with pytest.raises(TemplateError, match=r"^t\.html: line 2: filter 'boom': cannot shout x"):
        render_limited(failing, "t.html", {})
    odd = template_environment({"t.html": "{{ cycler(1)|shout }}"}, filters=filters)
    with pytest.raises(TemplateError, match="cannot take a Cycler value"):
        render_limited(odd, "t.html", {})


def test_threads_share_the_render_processes() -> None:
    """Pages served at once (serve's threads) each get their own answer."""
    environment = template_environment({"t.txt": "{{ n }}-{{ n * 2 }}"}, autoescape=False)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(lambda n: render_limited(environment, "t.txt", {"n": n}), range(200))
        )
    assert answers == [f"{n}-{n * 2}" for n in range(200)]
    assert shared_pool()._started <= shared_pool().size


def test_sandbox_refuses_python_internals() -> None:
    with pytest.raises(TemplateError, match="unsafe"):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}")


def test_template_variables_are_html_escaped() -> None:
    assert render("<p>{{ name }}</p>", {"name": "<script>alert(1)</script>"}) == (
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    )


def test_syntax_error_names_file_and_line() -> None:
    with pytest.raises(TemplateError, match=r"t\.mjml: line 2: "):
        render("ok\n{% if %}")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("{{ ''.__class__.__mro__ }}", id="python-internals"),
        pytest.param("{% for x in range(10) %}x{% endfor %}", id="statement"),
        pytest.param("{{ config }}", id="unknown-token"),
        pytest.param("Hello {# comment #}", id="comment"),
    ],
)
def test_partner_text_with_template_code_is_refused(text: str) -> None:
    assert template_syntax_problems(text, ["first_name"]) != []


def test_partner_text_allows_only_its_merge_tokens() -> None:
    assert template_syntax_problems("Hi {{ first_name }}, welcome", ["first_name"]) == []
    assert template_syntax_problems("Hi {{ company }}", ["first_name"]) == [
        "merge token '{{ company }}' is not allowed here (allowed: {{ first_name }})"
    ]


def test_partner_text_renders_as_inert_escaped_data() -> None:
    nonce = "abc123"
    evil = "<script>x()</script> {{ ''.__class__.__mro__ }} {{ first_name }}"
    value = partner_text(evil, ["first_name"], nonce, html=True)
    html = render("<p>{{ field }}</p>", {"field": value})
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "''.__class__.__mro__" in html.replace("&#39;", "'")  # shown, never evaluated
    assert marker(nonce, "first_name") in html
    filled = Personalizer(nonce).fill(html, {"first_name": "<b>Ann</b>"}, html_escape=True)
    assert "&lt;b&gt;Ann&lt;/b&gt;" in filled


def test_a_contact_value_cannot_forge_a_marker() -> None:
    personalizer = Personalizer("n1")
    text = f"Hi {marker('n1', 'first_name')}"
    forged = marker("n1", "email")
    out = personalizer.fill(text, {"first_name": forged, "email": "secret@x"}, html_escape=False)
    assert out == f"Hi {forged}"  # filled once, never re-scanned
    assert "secret@x" not in out


def test_contact_values_never_carry_line_breaks() -> None:
    out = Personalizer("n").fill(
        marker("n", "first_name"), {"first_name": "A\r\nBcc: x@y"}, html_escape=False
    )
    assert "\n" not in out and "\r" not in out
