"""A poll: live counts, one vote per socket, and a closing alarm whose effect happens once.

$ python -m runtime serve --app examples.poll:app     # then open localhost:8000/poll/
$ curl -X POST 'localhost:8000/poll/?question=Tea%3F&option=yes&option=no&seconds=60'
$ python -m websockets ws://localhost:8000/poll/<id>  # the poll as JSON, live; type yes to vote"""

import json
import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from runtime import AlarmInfo, App, Binding, DurableObject, ObjectWebSocket, app_of, env_of

POLLS = Binding("poll")
RULES = "question: 1-200 characters; option: 2-10 distinct, 1-200 characters; seconds: 1-604800"


class Poll(DurableObject):
    async def fetch(self, request: Request) -> Response:
        """Make this poll from the query string (see above), or refuse it with a 400."""
        q = request.query_params
        question, opts, secs = q.get("question", ""), q.getlist("option"), q.get("seconds", "")
        ok = all(0 < len(t) <= 200 for t in [question, *opts, secs]) and secs.isdecimal()
        if not (ok and 1 < len(set(opts)) == len(opts) < 11 and 0 < int(secs) <= 604800):
            return JSONResponse({"error": RULES}, 400)
        await self.storage.put("poll", {"question": question, "votes": {o: 0 for o in opts}})
        await self.storage.set_alarm(time.time() + int(secs))
        return JSONResponse({"id": self.id.hex}, 201)

    async def alarm(self, info: AlarmInfo) -> None:
        """Closing time. Its writes commit with the alarm's clearing, so they take effect once."""
        poll = await self.storage.get("poll")
        poll["closed"] = poll.get("closed", 0) + 1  # a count: 1, never 2, even if a node dies
        await self.storage.put("poll", poll)
        self.broadcast(json.dumps(poll))  # sent once the put is committed (output gate)

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        """A viewer: keep its socket (it outlives hibernation) and show it the poll."""
        self.accept_websocket(ws)
        ws.send(json.dumps(await self.storage.get("poll")))

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        """A vote: an option's text, once per socket and while the poll is open."""
        poll = await self.storage.get("poll")
        error = "poll closed" if poll.get("closed") else "voted already" if ws.attachment else None
        if error or message not in poll["votes"]:
            return ws.send(json.dumps({"error": error or "no such option"}))
        poll["votes"][message] += 1
        ws.attachment = message  # kept with the socket, across hibernation
        await self.storage.put("poll", poll)
        self.broadcast(json.dumps(poll))


async def page(request: Request) -> Response:
    """GET: the page (a form; at #<id>, that poll, live). POST: a new poll, made by its object."""
    if request.method == "GET":
        return app_of(request).render(request, "poll.html")
    polls = env_of(request).namespace(POLLS)
    return await polls.get(polls.new_unique_id()).fetch(request)


async def watch(websocket: WebSocket) -> None:
    """Hand a viewer's socket to the poll its URL names (an ID this app did not make: 400)."""
    polls = env_of(websocket).namespace(POLLS)
    await polls.get(polls.id_from_string(websocket.path_params["id"])).connect(websocket)


ROUTES = [
    Route("/", page, methods=["GET", "POST"], name="page"),
    WebSocketRoute("/{id}", watch, name="watch"),
]
HTML = Path(__file__).parent / "templates"
app = App("poll", "Poll", objects={POLLS: Poll}, routes=ROUTES, templates=HTML, static="poll")
