"""The rules of a lobby, sans I/O: members, the host, readiness, starting a game.

No sockets, no storage, no clock: :class:`LobbyRules` takes each input (a player's action,
a game's report, the time) with ``now`` and returns the effects for the LobbyRoom object
(lobby_room.py) to carry out (effects.py lists them). A refused action returns
``[Refuse(<the words the player is shown>)]`` and changes nothing.

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

from .effects import (
    Changed,
    ChatLine,
    Forfeit,
    Kicked,
    Left,
    LobbyEffect,
    Refuse,
    Save,
    ShowGame,
    StartGame,
    Welcome,
)
from .protocol import ProtocolError, clean_text

MIN_PLAYERS = 2
MAX_PLAYERS = 8
#: Results a lobby keeps (the latest first).
MAX_RESULTS = 10
OPEN, PLAYING = "open", "playing"

Effects = list[LobbyEffect]
NOT_A_MEMBER = Refuse("you are not a member of this lobby")


@dataclass(frozen=True, slots=True)
class Terms:
    """What a lobby is made with, checked (:func:`check_terms`)."""

    name: str
    public: bool
    max_players: int


def check_terms(name: object, public: object, max_players: object, max_name: int) -> Terms | Refuse:
    """A new lobby's name, visibility and size as asked for, checked; or why not."""
    try:
        title = clean_text(name, "the lobby name", max_name)
    except ProtocolError as exc:
        return Refuse(str(exc))
    if type(public) is not bool:
        return Refuse('"public" must be true or false')
    if type(max_players) is not int or not MIN_PLAYERS <= max_players <= MAX_PLAYERS:
        return Refuse(f'"max_players" must be a whole number from {MIN_PLAYERS} to 8')
    return Terms(title, public, max_players)


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
class LobbyRules:
    """One lobby's members, host, game and results."""

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
        cls, terms: Terms, code: str, now: float, *, grace: float = 60.0, empty_ttl: float = 30.0
    ) -> LobbyRules:
        """A new, empty lobby (``terms`` checked by :func:`check_terms`)."""
        return cls(
            terms.name, terms.public, terms.max_players, code, grace, empty_ttl, empty_since=now
        )

    # ------------------------------------------------------------- membership

    def join(self, player: str, name: str, now: float) -> Effects:
        """A new member (``name`` already cleaned); a name taken in the lobby gets a number."""
        if self.closed:
            return [Refuse("this lobby has closed")]
        if player in self.members:
            return [Refuse("you are already in this lobby")]
        if len(self.members) >= self.max_players:
            return [Refuse("the lobby is full (you can watch)")]
        self.arrivals += 1
        self.members[player] = Member(player, self._unique(name), self.arrivals)
        if self.host is None:
            self.host = player
        self.empty_since = None
        self.rev += 1
        return self._welcome(player)

    def resume(self, player: str) -> Effects:
        """The member is back (a resume with their token), if their place is still kept."""
        member = self.members.get(player)
        if member is None:
            return [Refuse("your place in this lobby is gone; join again")]
        member.away_since = None
        return self._welcome(player)

    def _welcome(self, player: str) -> Effects:
        effects: Effects = [Welcome(player), Changed()]
        if self.status == PLAYING and self.game:
            effects.append(ShowGame(self.game, everyone=False))
        return effects

    def leave(self, player: str, now: float) -> Effects:
        """A member gives their place up; if seated at the game being played, its round is
        theirs to lose (the game is told)."""
        playing = self.playing(player)
        self._remove(player, now)
        effects: Effects = [Left(player), Changed()]
        if playing is not None:
            effects.append(Forfeit(playing, player))
        return effects

    def disconnect(self, player: str, now: float) -> Effects:
        """The member's last connection dropped: their place is kept for ``grace`` seconds."""
        member = self.members.get(player)
        if member is None:
            return []
        if member.away_since is None:
            member.away_since = now
        return [Changed()]

    def found_without_sockets(self, connected: set[str], now: float) -> Effects:
        """The lobby was rebuilt from storage, and only the members in ``connected`` have an
        open socket: the others count as dropped from now (their node died with it)."""
        dropped = [
            m for m in self.members.values() if m.player not in connected and m.away_since is None
        ]
        for member in dropped:
            member.away_since = now
        return [Save()] if dropped else []

    def expire(self, now: float) -> Effects:
        """Remove members disconnected for longer than the grace period."""
        gone = [
            m.player
            for m in self.members.values()
            if m.away_since is not None and m.away_since + self.grace <= now
        ]
        for player in gone:
            self._remove(player, now)
        return [Changed()] if gone else []

    # ------------------------------------------------------------- actions

    def set_ready(self, player: str, ready: bool) -> Effects:
        member = self.members.get(player)
        if member is None:
            return [NOT_A_MEMBER]
        if self.status != OPEN:
            return [Refuse("a game is being played; wait for it to end")]
        member.ready = ready
        return [Changed()]

    def kick(self, by: str, target: str, now: float) -> Effects:
        """The host removes a member (from the game being played too)."""
        refused = self._not_host(by, "kick players")
        if refused is None and target == by:
            refused = Refuse("you cannot kick yourself; leave instead")
        if refused is None and target not in self.members:
            refused = Refuse("no such player in this lobby")
        if refused is not None:
            return [refused]
        playing = self.playing(target)
        self._remove(target, now)
        effects: Effects = [Kicked(target), Changed()]
        if playing is not None:
            effects.append(Forfeit(playing, target))
        return effects

    def transfer(self, by: str, target: str) -> Effects:
        """The host hands the role to another member."""
        refused = self._not_host(by, "hand over the host role")
        if refused is None and target == by:
            refused = Refuse("you are the host already")
        if refused is None and target not in self.members:
            refused = Refuse("no such player in this lobby")
        if refused is not None:
            return [refused]
        self.host = target
        return [Changed()]

    def start(self, by: str) -> Effects:
        """The host starts a game: ``StartGame`` for the host (seat 1) and the
        longest-present ready member (seat 2). Nothing changes until ``begin``."""
        refused = self._not_host(by, "start the game")
        if refused is not None:
            return [refused]
        if self.status != OPEN:
            return [Refuse("a game is already being played")]
        ready = sorted((m for m in self.members.values() if m.ready), key=lambda m: m.joined)
        host = self.members[by]
        if len(ready) < MIN_PLAYERS:
            return [Refuse(f"at least {MIN_PLAYERS} players must be ready")]
        if not host.ready:
            return [Refuse("get ready first: the host plays too")]
        opponent = next(m for m in ready if m.player != by)
        return [StartGame(((host.player, host.name), (opponent.player, opponent.name)))]

    def begin(self, game: str, first: str, second: str) -> Effects:
        """The game exists (``first`` and ``second`` seated): the lobby is playing it."""
        self.game = game
        self.seats = {first: 1, second: 2}
        self.status = PLAYING
        self.rev += 1
        return [Changed(), ShowGame(game)]

    def game_event(self, game: str, seq: int, event: dict[str, Any]) -> Effects:
        """A game of this lobby reports a round's result (``kind: result``) or a rematch
        starting (``kind: round``); ``seq`` numbers its reports, which arrive in order and
        at least once."""
        if seq <= self.reports.get(game, 0):
            return []  # delivered again (its first delivery's answer was lost)
        self.reports[game] = seq
        while len(self.reports) > MAX_RESULTS:
            del self.reports[next(iter(self.reports))]
        current = game == self.game
        if event.get("kind") == "round":
            if not current or self.status == PLAYING:
                return []
            self.status = PLAYING
            self.rev += 1
            return [Changed()]
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
        return [Changed()]

    def chat(self, player: str, text: str, now: float, burst: int, window: float) -> Effects:
        """A chat line from a member (``text`` already cleaned), unless they send too fast
        (``burst`` lines in any ``window`` seconds)."""
        member = self.members.get(player)
        if member is None:
            return [NOT_A_MEMBER]
        times = member.chat_times
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) >= burst:
            return [Refuse("you are sending messages too fast; wait a moment")]
        times.append(now)
        return [
            ChatLine({"player": player, "name": member.name, "text": text, "at": int(now * 1000)})
        ]

    def close(self) -> Effects:
        """The lobby is going away: nobody may join any more."""
        self.closed = True
        self.rev += 1
        return [Save()]

    def playing(self, player: str) -> str | None:
        """The game ``player`` is seated at and being played now, if any."""
        if self.status != PLAYING or player not in self.seats:
            return None
        return self.game

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
    def load(cls, data: dict[str, Any], grace: float, empty_ttl: float) -> LobbyRules:
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

    def _remove(self, player: str, now: float) -> None:
        """A member goes (left, kicked or timed out); the host role moves on if it was theirs."""
        if self.members.pop(player, None) is None:
            return
        if self.host == player:
            self.host = self._successor()
        if not self.members:
            self.empty_since = now
        self.rev += 1

    def _not_host(self, player: str, action: str) -> Refuse | None:
        if player not in self.members:
            return NOT_A_MEMBER
        if player != self.host:
            return Refuse(f"only the host can {action}")
        return None

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
