"""CEA-608 pages' round trip through real OBS and libcaption: paced into a stream, decoded from its recording."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from obsws_python.error import OBSSDKRequestError

from captioner.cea608 import MAX_BYTES, CaptionPacer, pages
from tests.support.obs_env import ObsEnv

# ---- real OBS ------------------------------------------------------------------------------------------------------

# Caption text and rows per page: English typography, Spanish, French, a hard-split German word over several
# pages, and a 4-row page of exactly MAX_BYTES bytes.
E2E_CAPTIONS: list[tuple[str, int]] = [
    ("It’s “live” – welcome… to the show!", 2),
    ("¿Qué tal? Mañana por la mañana iremos al médico, señor Núñez.", 2),
    ("À côté de l’église, les élèves étaient très âgés, déçus et fâchés.", 2),
    ("Der Donaudampfschiffahrtsgesellschaftskapitän grüßt die Gäste an Bord und wünscht eine gute Reise.", 2),
    (
        "Não há mais café, então eles irão à padaria da esquina comprar pão doce e também três maçãs vermelhas "
        "para o almoço.",
        4,
    ),
]


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_pages_roundtrip_through_real_obs(obs: ObsEnv) -> None:
    assert obs.nginx is not None, "session obs_env runs with rtmp=True"
    c = obs.client()
    obs.wait_stream(False)
    with pytest.raises(OBSSDKRequestError) as not_streaming:
        c.send_stream_caption("nobody is watching")
    assert not_streaming.value.code == 501  # OutputNotRunning

    sent = [p for text, rows in E2E_CAPTIONS for p in pages(text, rows=rows)]
    assert max(len(p.encode("utf-8")) for p in sent) == MAX_BYTES
    pacer = CaptionPacer(min_interval_s=0.8, max_backlog=len(sent))
    for text, rows in E2E_CAPTIONS:
        pacer.push(pages(text, rows=rows))

    before = set(obs.recordings())
    c.start_stream()
    try:
        obs.wait_stream(True)
        time.sleep(0.6)  # frames flowing
        while (when := pacer.next_due(time.monotonic())) is not None:
            time.sleep(max(0.0, when - time.monotonic()))
            page = pacer.due(time.monotonic())
            if page is not None:
                c.send_stream_caption(page)
        time.sleep(1.0)  # the last caption reaches a frame
    finally:
        c.stop_stream()
        obs.wait_stream(False)
    assert pacer.skipped == 0
    new: list[Path] = [r for r in obs.wait_recordings_closed() if r not in before]
    assert len(new) == 1, new

    # Rows kept apart, to check the row breaks too.
    cues = obs.extract_captions(new[0], row_sep="\n")
    # Exact: accents, "’" (basic-set 0x27) and '"' come back as sent, and libcaption keeps every row break.
    assert cues == sent
