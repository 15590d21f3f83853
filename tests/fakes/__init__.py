"""Fake vendor servers that speak each vendor's real wire protocol.

One Starlette app per vendor (``openai_fake``, ``anthropic_fake``, ``google_fake``,
``elevenlabs_fake``, ``kling_fake``, ``legnext_fake``), all served by one process
(``python -m tests.fakes --port P``) under ``/<vendor>``. The gateway under test
reaches them through each key's ``base_url``; the official SDKs can be pointed
at them directly too, which is how the fakes themselves are checked.

Every fake records the requests it receives and can be scripted through
``/<vendor>/_control/*`` (see :mod:`tests.fakes.common`). Prompts may carry
directives the fakes obey, e.g. ``[[usage prompt=1000 cached=400 completion=200
reasoning=50]]``, ``[[too-long]]``, ``[[block]]``, ``[[words=200 delay=0.02]]``, ``[[die after=3]]``,
``[[garbage after=2]]`` (a malformed stream chunk).
"""
