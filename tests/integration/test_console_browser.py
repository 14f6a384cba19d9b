"""The console in a real browser (Debian's chromium via Playwright) against gunicorn + worker.

A sales-ops person logs in, finds Mrs X's call by typing her number in another format, opens
it, searches HubSpot by a part of her name from the review queue and logs the ambiguous call on
the contact found (the engagement appears in the HubSpot test server), replays a dead delivery
once its cause is fixed, and logs out. Meanwhile, in a second browser context the size of a
phone and with the keyboard only, the same person logs in, searches a number and opens the
call: no page scrolls sideways and the focus is always visible. The run saves the screenshots
the README shows (docs/console-*.png).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.hubspot_server import ALL_SCOPES, DEFAULT_TOKEN, HubSpotTestServer
from tests.integration.harness import RunningService, raw_chunked_post
from tests.web.console.conftest import HASH, KEY, PASSWORD

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")
DOCS = Path(__file__).parents[2] / "docs"
FIXTURES = Path(__file__).parents[1] / "fixtures"
LATER_TOKEN = "pat-eu1-accepted-later-0000"

sync_api = pytest.importorskip("playwright.sync_api")


def eventually(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"
)
def test_find_fix_and_decide_in_the_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hubspot = HubSpotTestServer().start()
    try:
        hubspot.add_property("calls", "hs_call_external_id")
        hubspot.add_contact({"firstname": "Erika", "lastname": "Muster", "phone": "0211 63553400"})
        right = hubspot.add_contact(
            {"firstname": "Erika", "lastname": "Beispiel", "phone": "+49 211 63553400"}
        )
        monkeypatch.setenv("HUBSPOT_TEST_TOKEN", DEFAULT_TOKEN)
        target = {"type": "hubspot", "base_url": hubspot.url}
        running = RunningService(
            tmp_path,
            targets=[
                {
                    **target,
                    "name": "hubspot",
                    "access_token": "${HUBSPOT_TEST_TOKEN}",
                    "matching": {"tie_break": "review", "review_hours": 24},
                },
                # Its token is not accepted yet: its delivery ends dead until it is.
                {**target, "name": "hubspot-eu", "access_token": LATER_TOKEN},
            ],
            console={
                "enabled": True,
                "secret_key": KEY,
                "users": [{"name": "anna", "password_hash": HASH, "role": "operator"}],
                "links": {"hubspot": {"portal_id": "4711"}},
            },
        )
        running.start_web()
        running.start_worker()
        try:
            body = (FIXTURES / "example-v1.json").read_bytes()
            assert raw_chunked_post(running.port, "/webhooks/sipgate", body)[0] == 200
            running.wait_for(
                lambda rows: (
                    bool(rows)
                    and rows[0]["targets"]["hubspot"]["status"] == "review"
                    and rows[0]["targets"]["hubspot-eu"]["status"] == "dead"
                )
            )
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
                try:
                    page = browser.new_page(viewport={"width": 1100, "height": 900})
                    drive(page, running.url, hubspot, right)
                finally:
                    browser.close()
        finally:
            running.stop()
    finally:
        hubspot.stop()


def drive(page: Any, base: str, hubspot: HubSpotTestServer, right: str) -> None:
    expect = sync_api.expect
    page.goto(f"{base}/console/")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.get_by_label("User name").fill("anna")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.screenshot(path=str(DOCS / "console-overview.png"), full_page=True)

    # Find the call by a number typed the way a person would, not as sipgate stores it.
    page.get_by_role("link", name="Calls").click()
    page.get_by_label("Phone number (any format) or call id").fill("0211 635534-00")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.calls tbody tr")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name=re.compile("^Call "))).to_be_visible()
    expect(page.locator("#main")).to_contain_text("Invoice inquiry and plan change")
    expect(page.locator(".delivery", has_text="hubspot-eu")).to_contain_text("dead")
    page.screenshot(path=str(DOCS / "console-call.png"), full_page=True)

    # The ambiguous match waits in the review queue; the worker searches HubSpot by name.
    page.get_by_role("link", name="Review queue").click()
    item = page.locator(".review-item").first
    expect(item.locator("table.candidates").first.locator("tbody tr")).to_have_count(2)
    item.get_by_label("Phone number or name").fill("beisp")
    item.get_by_role("button", name="Search the CRM").click()
    found = page.locator(".review-item").first.locator("table.candidates").nth(1)

    expect(found.locator("tbody tr")).to_have_count(1, timeout=30_000)  # the page refreshes
    expect(found).to_contain_text("Erika Beispiel")
    page.screenshot(path=str(DOCS / "console-review.png"), full_page=True)

    phone_and_keyboard(page.context.browser, base)

    # Log the call on the contact the name search found.
    found.get_by_role("button", name="Log on this record").click()
    expect(page.get_by_role("heading", name=re.compile("^Call "))).to_be_visible()

    def logged_on_right_contact() -> bool:
        return any(
            (a.to_type, a.to_id) == ("contacts", right)
            for call in hubspot.objects("calls")
            for a in hubspot.associations("calls", call["id"])
        )

    eventually(logged_on_right_contact)
    delivery = page.locator(".delivery", has_text=re.compile(r"^\s*hubspot\s+done"))

    def shows_done() -> bool:
        # The worker records "done" just after the CRM answered: reload until the page says so.
        page.reload()
        return delivery.count() > 0

    eventually(shows_done)
    expect(delivery).to_contain_text("assigned by anna")
    expect(delivery.get_by_role("link", name=re.compile("^call "))).to_have_attribute(
        "href", re.compile(r"^https://app\.hubspot\.com/contacts/4711/record/0-48/")
    )

    # The dead delivery's cause is fixed in the CRM; replay it from the call's page.
    hubspot.add_token(LATER_TOKEN, ALL_SCOPES)
    page.locator(".delivery", has_text="hubspot-eu").get_by_role("button", name="Replay").click()
    expect(page.locator("p.flash")).to_have_text("Done.")

    def replayed() -> bool:
        page.reload()
        text = page.locator(".delivery", has_text="hubspot-eu").inner_text()
        return " done" in text

    eventually(replayed)
    expect(page.locator("#main")).to_contain_text("replay")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.goto(f"{base}/console/calls")
    expect(page).to_have_url(re.compile(r"/console/login"))


def no_horizontal_overflow(page: Any) -> bool:
    """Nothing is wider than the screen. A phone zooms a wider page out until it fits, and
    ``innerWidth`` grows with it: the screen's width is the viewport's, not ``innerWidth``.
    Measured once the page and its stylesheet have loaded: a heading is visible earlier, and
    an unstyled page is wider than a styled one."""
    page.wait_for_load_state("load")
    width = int(page.evaluate("document.documentElement.scrollWidth"))
    return width <= int(page.evaluate("window.innerWidth")) <= page.viewport_size["width"]


def focus_visible(page: Any) -> bool:
    """The focused element draws an outline (the stylesheet's ``:focus-visible`` rule)."""
    return bool(
        page.evaluate(
            """() => {
                const rules = [...document.styleSheets].flatMap(s => [...s.cssRules]);
                const style = getComputedStyle(document.activeElement);
                return rules.some(r => (r.selectorText || "").includes(":focus-visible"))
                    && style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
            }"""
        )
    )


def tab_to(page: Any, selector: str, presses: int = 40) -> None:
    """Press Tab until the element `selector` has the focus, with a visible focus ring."""
    for _ in range(presses):
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            assert focus_visible(page), selector
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def phone_and_keyboard(browser: Any, base: str) -> None:
    """On a phone-sized screen, keyboard only: log in, search a number, open the call; the
    overview, calls list, call and review queue never scroll sideways."""
    expect = sync_api.expect
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(f"{base}/console/login")
        page.evaluate("document.activeElement.blur()")  # start from nothing, like a visitor
        tab_to(page, "#user")
        page.keyboard.type("anna")
        tab_to(page, "#password")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        assert no_horizontal_overflow(page), "overview"
        wide = "document.body.appendChild(document.createElement('div')).style.cssText = "
        page.evaluate(wide + "'width: 800px; height: 1rem'")
        assert not no_horizontal_overflow(page), "the check sees a page wider than the screen"
        page.evaluate("document.body.lastElementChild.remove()")

        tab_to(page, 'nav a[href$="/console/calls"]')
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Calls")).to_be_visible()
        tab_to(page, 'input[name="q"]')
        page.keyboard.type("+49 211 635534 00")
        page.keyboard.press("Enter")
        expect(page.locator("table.calls tbody tr")).to_have_count(1)
        assert no_horizontal_overflow(page), "calls"

        tab_to(page, "table.calls tbody a")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name=re.compile("^Call "))).to_be_visible()
        assert no_horizontal_overflow(page), "call"
        page.screenshot(path=str(DOCS / "console-call-phone.png"), full_page=True)

        tab_to(page, 'nav a[href$="/console/review"]')
        page.keyboard.press("Enter")
        expect(page.locator(".review-item")).to_have_count(1)
        assert no_horizontal_overflow(page), "review queue"
    finally:
        context.close()
