"""The rules of a lobby, as plain code: members, the host, readiness, starting a game.

No sockets, no storage, no clock: the Lobby object (room.py) calls these methods with the
time and carries out the results. A refused action raises :class:`Refused` with the words
the player is shown, and changes nothing.

Who is who:

- A **member** holds one of ``max_players`` places (2-8). Members arrive in order; the
  one that arrived first among those present is the *longest-present*.
- The **host** is one member (the first to join, at the start). The host can hand the
  role to another member, kick members and start the game. When the host leaves, or
  stays disconnected past the grace period (and so is removed), the role passes to the
  longest-present connected member (or, if nobody is connected, the longest-present).
- A disconnected member keeps their place for ``grace`` seconds (``away_since``); coming
  back within it (with their seat token) takes the place back as it was.
- A game starts when the host asks, the lobby is open, the host is ready and at least two
  members are ready. The host takes seat 1 (and moves first); seat 2 goes to the
  longest-present ready member. Everyone else watches.
- A lobby with no members is closed ``empty_ttl`` seconds after it became empty.

``rev`` counts changes the directory shows (players, status), so the directory can tell a
late report from a newer one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .protocol import ProtocolError, clean_text

MIN_PLAYERS = 2
MAX_PLAYERS = 8
#: Results a lobby keeps (the latest first).
MAX_RESULTS = 10
OPEN, PLAYING = "open", "playing"


class Refused(Exception):
    """An action the rules refuse; the message is for the player."""


@dataclass
class Member:
    player: str
    name: str
    #: Order of arrival: smaller means present longer.
    joined: int
    ready: bool = False
    #: When the member's connection dropped (None: connected).
    away_since: float | None = None
    wins: int = 0
    #: When their recent chat messages were sent (memory only: a limit, not a record).
    chat_times: deque[float] = field(default_factory=deque, repr=False, compare=False)

    def dump(self) -> dict[str, Any]:
        return {
            "player": self.player,
            "name": self.name,
            "joined": self.joined,
            "ready": self.ready,
            "away_since": self.away_since,
            "wins": self.wins,
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> Member:
        return cls(
            player=data["player"],
            name=data["name"],
            joined=data["joined"],
            ready=data["ready"],
            away_since=data["away_since"],
            wins=data.get("wins", 0),
        )


@dataclass
class Lobby:
    name: str
    public: bool
    max_players: int
    code: str
    grace: float = 60.0
    empty_ttl: float = 30.0
    members: dict[str, Member] = field(default_factory=dict)
    host: str | None = None
    status: str = OPEN
    #: The game being (or last) played, and its seated players (player -> seat).
    game: str | None = None
    seats: dict[str, int] = field(default_factory=dict)
    arrivals: int = 0
    rev: int = 1
    results: list[dict[str, Any]] = field(default_factory=list)
    #: The last report number taken from each recent game.
    reports: dict[str, int] = field(default_factory=dict)
    empty_since: float | None = None
    closed: bool = False

    @classmethod
    def create(
        cls,
        name: object,
        public: object,
        max_players: object,
        code: str,
        now: float,
        *,
        max_name: int = 40,
        grace: float = 60.0,
        empty_ttl: float = 30.0,
    ) -> Lobby:
        """A new, empty lobby; Refused if the settings asked for are not valid."""
        try:
            title = clean_text(name, "the lobby name", max_name)
        except ProtocolError as exc:
            raise Refused(str(exc)) from None
        if type(public) is not bool:
            raise Refused('"public" must be true or false')
        if type(max_players) is not int or not MIN_PLAYERS <= max_players <= MAX_PLAYERS:
            raise Refused(f'"max_players" must be a whole number from {MIN_PLAYERS} to 8')
        return cls(title, public, max_players, code, grace, empty_ttl, empty_since=now)

    # ------------------------------------------------------------- membership

    def join(self, player: str, name: str, now: float) -> Member:
        """A new member (``name`` already cleaned); a name taken in the lobby gets a number."""
        if self.closed:
            raise Refused("this lobby has closed")
        if player in self.members:
            raise Refused("you are already in this lobby")
        if len(self.members) >= self.max_players:
            raise Refused("the lobby is full (you can watch)")
        self.arrivals += 1
        member = Member(player, self._unique(name), self.arrivals)
        self.members[player] = member
        if self.host is None:
            self.host = player
        self.empty_since = None
        self.rev += 1
        return member

    def leave(self, player: str, now: float) -> None:
        """A member goes (left, kicked or timed out); the host role moves on if it was theirs."""
        if self.members.pop(player, None) is None:
            return
        if self.host == player:
            self.host = self._successor()
        if not self.members:
            self.empty_since = now
        self.rev += 1

    def disconnect(self, player: str, now: float) -> None:
        """The member's connection dropped: their place is kept for ``grace`` seconds."""
        member = self.members.get(player)
        if member is not None and member.away_since is None:
            member.away_since = now

    def reconnect(self, player: str) -> Member:
        """The member is back (a resume with their token)."""
        member = self.members.get(player)
        if member is None:
            raise Refused("your place in this lobby is gone; join again")
        member.away_since = None
        return member

    def expire(self, now: float) -> list[str]:
        """Remove members disconnected for longer than the grace period; returns who."""
        gone = [
            m.player
            for m in self.members.values()
            if m.away_since is not None and m.away_since + self.grace <= now
        ]
        for player in gone:
            self.leave(player, now)
        return gone

    # ------------------------------------------------------------- actions

    def set_ready(self, player: str, ready: bool) -> None:
        member = self._member(player)
        if self.status != OPEN:
            raise Refused("a game is being played; wait for it to end")
        member.ready = ready

    def kick(self, by: str, target: str, now: float) -> None:
        """The host removes a member."""
        self._require_host(by, "kick players")
        if target == by:
            raise Refused("you cannot kick yourself; leave instead")
        if target not in self.members:
            raise Refused("no such player in this lobby")
        self.leave(target, now)

    def transfer(self, by: str, target: str) -> None:
        """The host hands the role to another member."""
        self._require_host(by, "hand over the host role")
        if target == by:
            raise Refused("you are the host already")
        if target not in self.members:
            raise Refused("no such player in this lobby")
        self.host = target

    def start(self, by: str) -> tuple[Member, Member]:
        """Check the host may start now; returns (seat 1, seat 2). ``begin`` makes it so."""
        self._require_host(by, "start the game")
        if self.status != OPEN:
            raise Refused("a game is already being played")
        ready = sorted((m for m in self.members.values() if m.ready), key=lambda m: m.joined)
        host = self.members[by]
        if len(ready) < MIN_PLAYERS:
            raise Refused(f"at least {MIN_PLAYERS} players must be ready")
        if not host.ready:
            raise Refused("get ready first: the host plays too")
        opponent = next(m for m in ready if m.player != by)
        return host, opponent

    def begin(self, game: str, first: Member, second: Member) -> None:
        """The game exists: the lobby is playing it."""
        self.game = game
        self.seats = {first.player: 1, second.player: 2}
        self.status = PLAYING
        self.rev += 1

    def game_event(self, game: str, seq: int, event: dict[str, Any]) -> bool:
        """A game of this lobby reports a round's result (``kind: result``) or a rematch
        starting (``kind: round``); ``seq`` numbers its reports, which arrive in order and
        at least once. Returns whether anything changed."""
        if seq <= self.reports.get(game, 0):
            return False  # delivered again (its first delivery's answer was lost)
        self.reports[game] = seq
        while len(self.reports) > MAX_RESULTS:
            del self.reports[next(iter(self.reports))]
        current = game == self.game
        if event.get("kind") == "round":
            if not current or self.status == PLAYING:
                return False
            self.status = PLAYING
            self.rev += 1
            return True
        winner = event.get("winner")
        if winner in self.members:
            self.members[winner].wins += 1
        self.results.insert(0, {"game": game, **event})
        del self.results[MAX_RESULTS:]
        if current and self.status == PLAYING:
            self.status = OPEN
            for member in self.members.values():
                member.ready = False
            self.rev += 1
        return True

    def chat(self, player: str, text: str, now: float, burst: int, window: float) -> dict[str, Any]:
        """A chat line from a member (``text`` already cleaned), or Refused if too fast."""
        member = self._member(player)
        times = member.chat_times
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) >= burst:
            raise Refused("you are sending messages too fast; wait a moment")
        times.append(now)
        return {"player": player, "name": member.name, "text": text, "at": int(now * 1000)}

    def close(self) -> None:
        """The lobby is going away: nobody may join any more."""
        self.closed = True
        self.rev += 1

    # ------------------------------------------------------------- time

    def next_deadline(self) -> float | None:
        """When ``expire`` or closing next has something to do (None: nothing pending)."""
        times = [
            m.away_since + self.grace for m in self.members.values() if m.away_since is not None
        ]
        if not self.members and self.empty_since is not None and not self.closed:
            times.append(self.empty_since + self.empty_ttl)
        return min(times) if times else None

    def due_to_close(self, now: float) -> bool:
        return (
            not self.closed
            and not self.members
            and self.empty_since is not None
            and self.empty_since + self.empty_ttl <= now
        )

    # ------------------------------------------------------------- views

    def summary(self) -> dict[str, Any]:
        """What the directory lists."""
        return {
            "name": self.name,
            "players": len(self.members),
            "max_players": self.max_players,
            "status": self.status,
        }

    def view(self, spectators: int = 0) -> dict[str, Any]:
        """The ``lobby`` of a state message: what every member and spectator sees."""
        members = sorted(self.members.values(), key=lambda m: m.joined)
        return {
            "name": self.name,
            "code": self.code,
            "public": self.public,
            "max_players": self.max_players,
            "players": [
                {
                    "player": m.player,
                    "name": m.name,
                    "ready": m.ready,
                    "host": m.player == self.host,
                    "connected": m.away_since is None,
                    "wins": m.wins,
                    "seat": self.seats.get(m.player) if self.status == PLAYING else None,
                }
                for m in members
            ],
            "host": self.host,
            "status": self.status,
            "game": self.game,
            "spectators": spectators,
            "results": self.results,
        }

    # ------------------------------------------------------------- storage

    def dump(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "public": self.public,
            "max_players": self.max_players,
            "code": self.code,
            "members": [m.dump() for m in self.members.values()],
            "host": self.host,
            "status": self.status,
            "game": self.game,
            "seats": self.seats,
            "arrivals": self.arrivals,
            "rev": self.rev,
            "results": self.results,
            "reports": self.reports,
            "empty_since": self.empty_since,
            "closed": self.closed,
        }

    @classmethod
    def load(cls, data: dict[str, Any], grace: float, empty_ttl: float) -> Lobby:
        lobby = cls(data["name"], data["public"], data["max_players"], data["code"])
        lobby.grace, lobby.empty_ttl = grace, empty_ttl
        lobby.members = {m["player"]: Member.load(m) for m in data["members"]}
        lobby.host = data["host"]
        lobby.status = data["status"]
        lobby.game = data["game"]
        lobby.seats = dict(data["seats"])
        lobby.arrivals = data["arrivals"]
        lobby.rev = data["rev"]
        lobby.results = list(data["results"])
        lobby.reports = dict(data["reports"])
        lobby.empty_since = data["empty_since"]
        lobby.closed = data["closed"]
        return lobby

    # ------------------------------------------------------------- helpers

    def _member(self, player: str) -> Member:
        member = self.members.get(player)
        if member is None:
            raise Refused("you are not a member of this lobby")
        return member

    def _require_host(self, player: str, action: str) -> None:
        self._member(player)
        if player != self.host:
            raise Refused(f"only the host can {action}")

    def _successor(self) -> str | None:
        """The longest-present connected member, else the longest-present one."""
        members = sorted(self.members.values(), key=lambda m: (m.away_since is not None, m.joined))
        return members[0].player if members else None

    def _unique(self, name: str) -> str:
        taken = {m.name.casefold() for m in self.members.values()}
        if name.casefold() not in taken:
            return name
        n = 2
        while f"{name} ({n})".casefold() in taken:
            n += 1
        return f"{name} ({n})"
