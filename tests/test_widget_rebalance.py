"""Chapter 7's rebalancing view driven headless, as its buttons would, and what it draws."""

from __future__ import annotations

import pytest

from mqlib.scenarios.rebalance import RebalanceRun, default_run
from mqlib.widgets import Rebalancing
from mqlib.widgets.rebalance import PAUSED_COLOUR


def test_opens_on_the_join_story_with_every_partition_grey_during_the_eager_rebalance():
    view = Rebalancing()
    assert view.summary() == default_run().summary()
    assert view._repr_mimebundle_()["text/plain"] == view.summary()
    assert len(view.work_mark.x) == 162 and len(view.paused_mark.x) == 18
    assert sorted(set(view.paused_mark.x)) == [12.0, 13.0, 14.0]
    assert list(view.paused_mark.colors) == [PAUSED_COLOUR]
    assert len(set(view.work_mark.colors)) == 4  # c1..c4 each have a colour
    assert "c4 joined, round 1" in view.rebalances_html.value
    assert list(view.member_control.options) == ["c1", "c2", "c3", "c4"]


def test_switching_to_cooperative_replays_the_story_and_only_the_moved_partition_pauses():
    view = Rebalancing()
    view.protocol_control.value = "cooperative"
    assert view.run.settings["protocol"] == "cooperative"
    assert list(zip(view.paused_mark.x, view.paused_mark.y, strict=True)) == [
        (15.0, 4),
        (16.0, 4),
        (17.0, 4),
    ]
    view.commit_control.value = True
    assert "0 twice or more" in view.summary()
    assert view.run.actions == default_run().actions


def test_buttons_drive_the_run_and_refusals_show_their_reason():
    view = Rebalancing(RebalanceRun())
    assert view.rebalances_html.value.endswith("none yet</div>")
    view.buttons["Advance 5 s"].click()
    view.member_control.value = "c2"
    view.buttons["Stall 400 s"].click()
    view.buttons["Stall 400 s"].click()
    assert "Refused" in view.message.value and "already stuck" in view.message.value
    for _ in range(6):
        view.buttons["Advance 60 s"].click()
    assert "c2 exceeded max.poll.interval.ms" in view.rebalances_html.value
    assert view.window() == (view.run.now - 59, view.run.now)
    view.buttons["+ member"].click()
    view.member_control.value = "c1"
    view.buttons["Restart (30 s)"].click()
    view.member_control.value = "c3"
    view.buttons["Crash"].click()
    # c2 is still stuck (out of the group), c1 restarting, c3 dead: only the newcomer runs.
    assert view.run.running_members() == ["c4"] and view.member_control.value == "c4"
    view.buttons["Leave"].click()
    assert view.message.value == "" and view.run.actions[-1] == ("leave", ("c4",))
    assert view.run.running_members() == [] and view.buttons["Leave"].disabled


def test_methods_validate_through_the_scenario():
    view = Rebalancing()
    with pytest.raises(ValueError, match="seconds"):
        view.advance(0)
    with pytest.raises(ValueError, match="not a running member"):
        view.crash("c9")
    with pytest.raises(TypeError, match="run must be a RebalanceRun"):
        Rebalancing(run="default")
