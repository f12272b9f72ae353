"""The machinery of the lessons, so that each lesson's cells show only what matters.

Nothing here is part of the protocol; it is the scaffolding around the
experiments. A lesson reaches all of it as ``wslab.lessons.<name>`` (read
one with ``wslab.lessons.<name>??``); each piece has one home:

============================  ====================================================
module                        what, and for which lessons
============================  ====================================================
:mod:`~.course`               the twelve lessons, the course map and set-up check
                              (00), the working copy of ``make lab``
:mod:`~.servers`              what every lesson server does (stop on
                              ``wslab.stop_all()``, at exit, on re-run;
                              :class:`ServerStopped` after), the websockets
                              reference server (02 to 07), the sequential
                              broadcast (09), the frame server of lesson 11
:mod:`~.sockets`              a socket that counts its bytes, one raw request,
                              waiting for another thread (01, 02, 05, 08)
:mod:`~.polling`              lesson 01: polling against a WebSocket
:mod:`~.pages`                lesson 05: the page around the student's JavaScript
:mod:`~.push`                 lesson 08: SSE, long polling and a WebSocket
:mod:`~.tokens`               lesson 10: tokens that expire, checked in-band
:mod:`~.charts`               the charts of lessons 01, 08, 09 and 10
============================  ====================================================

Everything a lesson starts here stops with ``wslab.stop_all()`` and when the
kernel shuts down or restarts. The your-turn steps are in
:mod:`wslab.practice`, the quizzes' keys in :mod:`wslab.quiz`.
"""

from __future__ import annotations

from .charts import (
    plot_attempts,
    plot_backoff,
    plot_fanout,
    plot_polling,
    plot_push,
    plot_slow_consumer,
)
from .course import COURSE, course_map, environment_check, newer_in_course, working_copy
from .pages import client_page
from .polling import UPDATE, Measurement, UpdateServer, measure_polling
from .push import SSE_RETRY_MS, PushServer, compare_push, sse_sample
from .servers import (
    FrameServer,
    ReferenceServer,
    ServerStopped,
    reference_server,
    sequential_broadcast,
    serve_frames,
)
from .sockets import CountingSocket, ask, wait_for
from .tokens import make_token, token_guard, verify_token

__all__ = [
    "COURSE",
    "SSE_RETRY_MS",
    "UPDATE",
    "CountingSocket",
    "FrameServer",
    "Measurement",
    "PushServer",
    "ReferenceServer",
    "ServerStopped",
    "UpdateServer",
    "ask",
    "client_page",
    "compare_push",
    "course_map",
    "environment_check",
    "make_token",
    "measure_polling",
    "newer_in_course",
    "plot_attempts",
    "plot_backoff",
    "plot_fanout",
    "plot_polling",
    "plot_push",
    "plot_slow_consumer",
    "reference_server",
    "sequential_broadcast",
    "serve_frames",
    "sse_sample",
    "token_guard",
    "verify_token",
    "wait_for",
    "working_copy",
]
