"""What a call does once it is past the edge: plain Python, no FastAPI.

``calls`` is the one path every provider call takes (identity → policy →
admission → key pool → provider → meter → history); ``chat`` is the chat service
on top of it (streams included), ``native`` the Anthropic- and Google-native
APIs on the chat service, ``media_calls`` images, speech and embeddings,
``provider_jobs`` the long provider jobs (video, Midjourney-style, music),
``sessions`` and ``attachments`` stateful completion on a conversation with its
memory and files, ``tools`` the check of tool definitions every face runs,
``suno`` the Suno accounts handed to students.
"""
