"""Connect an account at the development upstream in headless Chromium.

Run by the end-to-end test `connections::browser` with Playwright for
Python pointed at the system Chromium (browsers are never downloaded).
Input: one JSON argument
  {"chromium": PATH, "authorization_url": URL, "login": NAME, "callback_prefix": URL}
Opens the authorization URL the host gave (`POST /connections/ads-user`),
signs in on the upstream's page, allows, and lands on the host's callback
page. Asserts as it goes; prints one JSON line of observations at the end.
"""

import json
import sys

from playwright.sync_api import expect, sync_playwright

ARG = json.loads(sys.argv[1])


def main():
    seen = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ARG["chromium"], headless=True)
        page = browser.new_context().new_page()
        scripts = []
        page.on("console", lambda m: scripts.append(m.text))

        response = page.goto(ARG["authorization_url"])
        assert response.status == 200, response.status
        seen["consent_text"] = page.locator("body").inner_text()

        # A wrong password is refused on the page; nothing is redirected.
        page.fill("#username", ARG["login"])
        page.fill("#password", "not-the-password")
        page.click("#allow")
        expect(page.locator("#problem")).to_be_visible()
        seen["after_wrong_password"] = page.url

        page.fill("#username", ARG["login"])
        page.fill("#password", "dev")
        with page.expect_navigation(url=lambda u: u.startswith(ARG["callback_prefix"])) as nav:
            page.click("#allow")
        landed = nav.value
        callback_url = page.url
        seen["callback_status"] = landed.status
        seen["callback_headers"] = {
            k: v
            for k, v in landed.headers.items()
            if k in ("content-security-policy", "referrer-policy", "cache-control", "x-frame-options")
        }
        # The host names whose identity the account would join, and asks.
        expect(page.locator("#title")).to_have_text("Connect your account?")
        seen["confirm_message"] = page.locator("#message").inner_text()
        seen["scripts_on_page"] = page.locator("script").count()

        with page.expect_navigation() as posted:
            page.click("#connect")
        seen["connect_status"] = posted.value.status
        expect(page.locator("#title")).to_have_text("Connected")
        seen["title"] = page.locator("#title").inner_text()
        seen["message"] = page.locator("#message").inner_text()

        # The callback URL again (a replay from the history) connects nothing more.
        again = page.goto(callback_url)
        seen["replay_status"] = again.status
        seen["replay_title"] = page.locator("#title").inner_text()
        seen["replay_code"] = page.locator("#code").inner_text()
        browser.close()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
