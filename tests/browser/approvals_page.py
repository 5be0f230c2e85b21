"""Drive the approver inbox page (/console/approvals) in headless Chromium.

Run by the end-to-end test `approvals::browser` with Playwright for Python
pointed at the system Chromium (browsers are never downloaded). Input: one
JSON argument
  {"base": URL, "chromium": PATH, "alice": TOKEN, "bob": TOKEN,
   "requester": TOKEN, "hostile_call": ID, "own_call": ID}
Asserts as it goes; prints one JSON line of observations at the end.
"""

import json
import sys

from playwright.sync_api import expect, sync_playwright

ARG = json.loads(sys.argv[1])
BASE = ARG["base"]
PAGE = BASE + "/console/approvals"


def sign_in(page, token):
    page.goto(PAGE)
    page.fill("#token", token)
    page.click("#sign-in button[type=submit]")


def item(page, call_id):
    return page.locator(f'li.approval[data-call-id="{call_id}"]')


def main():
    seen = {"dialogs": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ARG["chromium"], headless=True)

        # Alice: signs in, sees the call with its arguments as text, approves.
        context = browser.new_context()
        page = context.new_page()
        page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
        response = page.goto(PAGE)
        headers = response.headers
        seen["csp"] = headers.get("content-security-policy")
        seen["nosniff"] = headers.get("x-content-type-options")
        sign_in(page, ARG["alice"])
        call = item(page, ARG["hostile_call"])
        expect(call).to_be_visible(timeout=15000)
        expect(call.locator(".tool")).to_have_text("util:echo")
        expect(call.locator(".progress")).to_have_text("0 of 2")
        expect(call.locator(".requester")).to_have_text("tester (public)")
        arguments = call.locator(".arguments").text_content()
        assert "<script>window.__pwned=1</script>" in arguments, arguments
        assert call.locator("script, img").count() == 0, "hostile markup stayed text"
        seen["arguments"] = json.loads(arguments)
        seen["token_in_session_storage"] = page.evaluate(
            "sessionStorage.getItem('fastmcp.approvals.token') !== null"
        )
        seen["local_storage_keys"] = page.evaluate("Object.keys(localStorage)")
        seen["url_after_sign_in"] = page.url
        call.locator(".comment").fill("ok from alice")
        call.locator("button.approve").click()
        expect(call).to_have_count(0, timeout=15000)
        expect(page.locator("#status")).to_contain_text("Approved util:echo")
        seen["pwned"] = page.evaluate("window.__pwned === undefined ? null : window.__pwned")
        context.close()

        # Bob, in his own session: the second approval completes the quorum.
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, ARG["bob"])
        call = item(page, ARG["hostile_call"])
        expect(call).to_be_visible(timeout=15000)
        expect(call.locator(".progress")).to_have_text("1 of 2")
        expect(call.locator(".decisions li")).to_have_text(["alice approved: ok from alice"])
        call.locator("button.approve").click()
        expect(call).to_have_count(0, timeout=15000)
        context.close()

        # The requester: their own call is not in their inbox, and shown
        # directly it has no buttons.
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, ARG["requester"])
        expect(page.locator("#empty")).to_be_visible(timeout=15000)
        seen["requester_inbox"] = page.locator("li.approval").count()
        page.goto(PAGE + "#call=" + ARG["own_call"])
        own = item(page, ARG["own_call"])
        expect(own).to_be_visible(timeout=15000)
        expect(own.locator(".cannot-decide")).to_be_visible()
        seen["requester_buttons"] = own.locator("button").count()

        # A bad token: told so, and signed out.
        page.click("#sign-out")
        sign_in(page, "not-a-token")
        expect(page.locator("#status")).to_contain_text("not accepted", timeout=15000)
        expect(page.locator("#sign-in")).to_be_visible()
        context.close()
        browser.close()
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    main()
