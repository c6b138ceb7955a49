"""A partner's brand colour that is too light for text on white is darkened (same hue)
wherever the sample campaign's email uses it: the headline, links and the white-on-colour
button (issue 13: 27 of the 40 demo partners' colours fell under 4.5:1)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from support.world import build_world

from partnercast.core.tenancy import tenant_session
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.plugins.contrast import contrast_ratio, readable_colour
from partnercast.tenants.models import Partner


@pytest.mark.parametrize("given", ["#ffd700", "#7fffd4", "#ff8c00", "#0b3d91"])
def test_every_colour_the_email_uses_reads_on_white(
    cli, engine: Engine, tmp_path: Path, sink: SmtpSink, given: str
) -> None:
    world = build_world(engine, tmp_path / "w", sink.port, slug="vendor-a")
    with tenant_session(engine, world.tenant_id) as session:
        partner = session.exec(select(Partner).where(Partner.external_id == "P001")).one()
        partner.primary_color = given
        session.add(partner)
    out = tmp_path / "intro.html"
    cli(
        "preview",
        "cloud-security",
        "P001",
        "--tenant",
        "vendor-a",
        "--touch",
        "intro",
        "-o",
        str(out),
    )
    html = out.read_text()

    colours = {
        c.lower()
        for c in re.findall(r"(?:color|background-color)[=:]\s*\"?(#[0-9a-fA-F]{6})", html)
    }
    shown = readable_colour(given)
    assert contrast_ratio(shown, "#ffffff") >= 4.5
    assert shown in colours  # the headline, links and button use the readable colour
    if contrast_ratio(given, "#ffffff") >= 4.5:
        assert shown == given  # a colour that reads is used as given
    else:
        assert given not in colours  # and never the one that does not
