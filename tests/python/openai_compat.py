"""Runs the official `openai` package against Squadron's /v1: models, chat (plain and
streamed, with usage), embeddings (float and base64), errors, and files and vector stores
(upload, ingest, search, delete). Exits non-zero on any
mismatch. Started by tests/api/gateway.rs with OPENAI_BASE_URL and OPENAI_API_KEY set."""

import base64
import io
import struct
import time

import openai

client = openai.OpenAI()  # reads OPENAI_BASE_URL and OPENAI_API_KEY

ids = [m.id for m in client.models.list()]
assert "gpt" in ids and "embedder" in ids, ids

messages = [{"role": "user", "content": "hello brave new world"}]
completion = client.chat.completions.create(model="gpt", messages=messages)
assert completion.choices[0].message.content == "world new brave hello ", completion
assert completion.usage.prompt_tokens == 7, completion.usage

stream = client.chat.completions.create(
    model="gpt", messages=messages, stream=True, stream_options={"include_usage": True}
)
text, usage = "", None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        text += chunk.choices[0].delta.content
    if chunk.usage:
        usage = chunk.usage
assert text == "world new brave hello ", text
assert usage is not None and usage.completion_tokens == 4, usage

floats = client.embeddings.create(model="embedder", input=["abc", "hello"], encoding_format="float")
assert len(floats.data) == 2 and abs(floats.data[1].embedding[0] - 5 / 8) < 1e-6, floats
# The SDK asks for base64 by default and decodes it itself.
default = client.embeddings.create(model="embedder", input="hello")
assert abs(default.data[0].embedding[0] - 5 / 8) < 1e-6, default.data[0].embedding[:2]
raw = client.embeddings.with_raw_response.create(model="embedder", input="hello", encoding_format="base64")
encoded = raw.http_response.json()["data"][0]["embedding"]
assert abs(struct.unpack("<f", base64.b64decode(encoded)[:4])[0] - 5 / 8) < 1e-6

try:
    client.chat.completions.create(model="no-such-model", messages=messages)
    raise AssertionError("expected a 404")
except openai.NotFoundError as err:
    assert "no-such-model" in str(err), err

try:
    client.embeddings.create(model="text-embedding-3-large", input="x")
    raise AssertionError("expected a 400")
except openai.BadRequestError as err:
    assert "text-embedding-3-small" in str(err), err

uploaded = client.files.create(file=("notes.md", io.BytesIO(b"# Notes\nCats purr."), "text/markdown"), purpose="assistants")
assert uploaded.id.startswith("file-") and uploaded.bytes == 18, uploaded
assert client.files.content(uploaded.id).read() == b"# Notes\nCats purr."
assert uploaded.id in [f.id for f in client.files.list()]

store = client.vector_stores.create(name="notes", file_ids=[uploaded.id])
deadline = time.time() + 15
while store.file_counts.in_progress and time.time() < deadline:
    time.sleep(0.05)
    store = client.vector_stores.retrieve(store.id)
assert store.status == "completed" and store.file_counts.completed == 1, store
entries = client.vector_stores.files.list(vector_store_id=store.id)
assert [e.id for e in entries] == [uploaded.id] and entries.data[0].status == "completed", entries
results = client.vector_stores.search(vector_store_id=store.id, query="purring cats")
hits = list(results)
assert hits and hits[0].filename == "notes.md" and hits[0].content[0].text.startswith("# Notes"), hits
assert client.vector_stores.delete(store.id).deleted
assert client.files.delete(uploaded.id).deleted

print("openai SDK", openai.__version__, "ok")
