"""``assistant talk``: ``up`` with the kiosk page as face, voice and microphone."""

import signal
import socket
import time

from .mailservers import free_port


def test_talk_starts_the_kiosk_with_the_browser_microphone_and_says_where(procs):
    mic_port, web_port = free_port(), free_port()
    talk = procs.start("assistant", "talk", env={"ASSISTANT_SUPERVISOR__SERVICES": '["hearing"]', "ASSISTANT_HEARING__WEB_PORT": str(mic_port),
                                                 "ASSISTANT_RENDERER__WEB_PORT": str(web_port)})
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", mic_port), timeout=1).close()
            break  # the hearing service runs the browser microphone: talk's override reached it
        except OSError:
            assert talk.poll() is None and time.monotonic() < deadline, talk.communicate()
            time.sleep(0.3)
    talk.send_signal(signal.SIGINT)
    out, err = talk.communicate(timeout=30)
    assert talk.returncode == 0, err
    assert f"talk to it at http://127.0.0.1:{web_port}/" in out
    assert "lost the bus broker" not in err and "Traceback" not in err, err
