"""chat_web's page at / driven in headless Chromium over the DevTools protocol, on loopback, with a
tiny random model behind a server that asks for an API key.

The page shows the 401 of its first request as an error; /key gives the key; New chat clears the
chat; /temperature 0 makes replies greedy, so each one the page streams is checked against the
whole reply the API gives for the same conversation. Then: a message typed and sent with Enter
shows its streamed reply; Edit and Save sends the edited message and replaces the reply;
Regenerate streams it again; markdown renders through Debian's marked and markup in model text
stays text (no element, no script). Last, a server without the markdown script: the page says
so and shows replies as plain text. A screenshot of the first chat is saved as <work>/page.png.
Run by tests/run_browser_test.sh (ctest serve.chat_page).
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from devtools_browser import Browser  # noqa: E402
from test_openai_client import KEY, http, serving  # noqa: E402


class ChatPage(Browser):
    """The browser on chat_web's page."""

    def open(self, url):
        self.call("Page.navigate", url=url)
        self.wait("document.readyState === 'complete' && !!window.nanochat", "the page to load")

    def type(self, text):
        """Types into the message box as a person would and presses Enter."""
        self.eval("document.getElementById('input').focus()")
        self.call("Input.insertText", text=text)
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13)

    def arm_busy(self):
        """From now on, notes when the page turns busy: a short reply can start and end between two
        polls of data-state, so a wait for 'busy' itself could miss it."""
        self.eval("window.sawBusy = false; (window.busyObserver ||= new MutationObserver(() => {"
                  " if (document.body.dataset.state === 'busy') window.sawBusy = true; }))"
                  ".observe(document.body, {attributes: true, attributeFilter: ['data-state']}); true")

    def wait_idle(self):
        self.wait("document.body.dataset.state === 'idle'", "the reply to end")

    def messages(self):
        """The chat as the DOM shows it: (class, text) for each message."""
        return self.eval("[...document.querySelectorAll('#log .msg')].map(m => [m.className, m.querySelector('.content') ?"
                         " m.querySelector('.content').textContent : m.textContent])")


def greedy_reply(address, conversation):
    status, body = http(f"http://{address}/v1/chat/completions", json.dumps({"messages": conversation, "temperature": 0}).encode(),
                        {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    assert status == 200, (status, body)
    return json.loads(body)["choices"][0]["message"]["content"]


def assistant_text(browser):
    """The last reply as the page holds it (its markdown source) and as the DOM shows it."""
    source = browser.eval("nanochat.state.messages.filter(m => m.role === 'assistant').map(m => m.content).pop()")
    shown = browser.messages()[-1]
    assert shown[0].startswith("msg assistant"), shown
    return source, shown[1]


def page_checks(browser, address, screenshot):
    checks = 0
    browser.open(f"http://{address}/")
    assert browser.eval("nanochat.hasMarkdown") is True, "the page did not load the server's marked.min.js"
    browser.wait("!!document.querySelector('#log .msg.error')", "the 401 to be shown")
    error = browser.messages()[-1]
    assert error[0] == "msg error" and "API key" in error[1] and "/key" in error[1], error
    checks += 1

    browser.type(f"/key {KEY}")
    browser.wait("document.getElementById('info').textContent.startsWith('nanochat-')", "the model name")
    browser.eval("document.getElementById('new-chat').click()")
    assert browser.messages() == [], browser.messages()
    browser.type("/temperature 0")
    browser.type("/topk 1000000x")
    shown = browser.messages()
    assert shown[-2] == ["msg note", "temperature 0"] and shown[-1][0] == "msg error" and "/topk 1000000x" in shown[-1][1], shown
    assert "temperature 0" in browser.eval("document.getElementById('info').textContent")
    checks += 2

    browser.arm_busy()
    browser.type("Hello there")
    browser.wait("window.sawBusy", "the request to start", timeout=10)
    browser.wait_idle()
    source, shown = assistant_text(browser)
    expected = greedy_reply(address, [{"role": "user", "content": "Hello there"}])
    assert expected and source == expected, (source, expected)
    assert shown.strip(), "the reply is not in the DOM"
    user = [m for m in browser.messages() if m[0] == "msg user"]
    assert user == [["msg user", "Hello there"]], user
    checks += 1
    browser.screenshot(screenshot)

    # Edit the message: the reply to the edited text replaces the old one.
    browser.eval("[...document.querySelectorAll('#log .msg.user button')].find(b => b.textContent === 'Edit').click()")
    browser.eval("document.querySelector('#log .msg.user textarea').value = 'Tell me a joke'")
    browser.eval("[...document.querySelectorAll('#log .msg.user button')].find(b => b.textContent === 'Save and send').click()")
    browser.wait_idle()
    source, _ = assistant_text(browser)
    assert source == greedy_reply(address, [{"role": "user", "content": "Tell me a joke"}]), source
    turns = browser.eval("nanochat.state.messages.filter(m => m.role === 'user' || m.role === 'assistant').map(m => m.role + ':' + (m.role === 'user' ? m.content : ''))")
    assert turns == ["user:Tell me a joke", "assistant:"], turns
    checks += 1

    browser.arm_busy()
    browser.eval("[...document.querySelectorAll('#log .msg.assistant button')].find(b => b.textContent === 'Regenerate').click()")
    browser.wait("window.sawBusy", "the regenerated request", timeout=10)
    browser.wait_idle()
    again, _ = assistant_text(browser)
    assert again == source, (again, source)
    assert browser.eval("nanochat.state.messages.filter(m => m.role === 'assistant').length") == 1
    checks += 1

    # Markdown renders; markup in model text stays text.
    rendered = browser.eval("""(() => {
        const div = document.createElement('div');
        div.append(nanochat.renderMarkdown('**bold** and `code`\\n\\n<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>' +
                                           '[link](javascript:window.pwned=3) <b onclick="window.pwned=4">b</b>'));
        document.body.append(div);
        const r = {strong: div.querySelectorAll('strong').length, code: div.querySelectorAll('code').length,
                   elements: [...div.querySelectorAll('*')].map(e => e.tagName).sort().join(','),
                   handlers: [...div.querySelectorAll('*')].some(e => [...e.attributes].some(a => a.name.startsWith('on'))),
                   href: div.querySelector('a') ? div.querySelector('a').getAttribute('href') : null, text: div.textContent};
        div.querySelector('a') && div.querySelector('a').click();
        return new Promise(done => setTimeout(() => { r.pwned = window.pwned === undefined ? null : window.pwned; div.remove(); done(r); }, 300));
    })()""")
    assert rendered["strong"] == 1 and rendered["code"] == 1, rendered
    assert rendered["elements"] in ("A,CODE,P,P,STRONG", "A,CODE,P,STRONG"), rendered
    assert not rendered["handlers"] and rendered["href"] is None and rendered["pwned"] is None, rendered
    assert "<img" in rendered["text"] and "<script>" in rendered["text"], rendered
    checks += 1

    # An error while streaming is shown: the server is asked for more than it allows.
    browser.type("/temperature 7")
    browser.type("Hi again")
    browser.wait_idle()
    error = browser.messages()[-1]
    assert error[0] == "msg error" and "temperature" in error[1], error
    checks += 1
    return checks


def plain_text_checks(browser, address):
    browser.open(f"http://{address}/")
    assert browser.eval("nanochat.hasMarkdown") is False
    notice = browser.eval("document.getElementById('notice').hidden ? '' : document.getElementById('notice').textContent")
    assert "libjs-marked" in notice and "plain text" in notice, notice
    browser.wait("!!document.querySelector('#log .msg.error')", "the 401 to be shown")
    browser.type(f"/key {KEY}")
    browser.type("/temperature 0")
    browser.type("**not bold**")
    browser.wait_idle()
    source, shown = assistant_text(browser)
    assert source == greedy_reply(address, [{"role": "user", "content": "**not bold**"}]) and shown == source, (source, shown)
    assert browser.eval("document.querySelectorAll('#log .msg.assistant .content *').length") == 0
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", required=True)
    ap.add_argument("--chat-web", required=True)
    ap.add_argument("--write-model", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    subprocess.run([a.write_model, a.work], check=True, stdout=subprocess.DEVNULL)
    checks = 0
    browser = ChatPage(a.chromium)
    try:
        for slots, extra, run in ((2, [], lambda address: page_checks(browser, address, os.path.join(a.work, "page.png"))),
                                  (1, ["--marked-js", ""], lambda address: plain_text_checks(browser, address))):
            with serving(a.chat_web, a.work, 4, slots, ["--max-tokens", "48", *extra]) as (_, address):
                checks += run(address)
    finally:
        browser.close()
    print(f"{checks} passed, 0 failed; screenshot {os.path.join(a.work, 'page.png')}")


if __name__ == "__main__":
    main()
