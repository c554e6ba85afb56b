"""Seeded synthetic multi-speaker conversations (espeak-ng voices) for evaluating speaker
attribution: which diarization speaker each of Whisper's words is given.

    python -m evaluation.corpus OUT_DIR --seed 0 [--count N] [--only NAME ...] [--jobs J]
    python -m evaluation.corpus --list

Each conversation NAME (uri `<scenario>_s<seed>`) is written as
  <uri>.wav   16 kHz mono PCM-16, utterances mixed with numpy (+ a faint noise floor);
  <uri>.rttm  `SPEAKER <uri> 1 <start> <dur> <NA> <NA> <spk> <NA> <NA>`, one line per utterance:
              its VOICED extent (the synthesized utterance with its leading/trailing silence
              trimmed by an energy threshold; the trimmed clip is what is placed in the mix);
  <uri>.stm   `<uri> 1 <spk> <start> <end> <text>` per utterance, sorted by start;
  <uri>.txt   the reference transcript: the utterances' texts in time order, one line;
plus OUT_DIR/manifest.json: a JSON list of {"audio", "rttm", "stm", "txt", "uri", "tags",
"duration", "speakers"} with paths relative to the manifest (python -m evaluation.evaluate reads it).

The scenarios stress what attribution gets wrong: one-word replies ("Yes.", "Okay.", ...) as
whole turns and at the start / middle / end of a turn, one-word replies followed within
0.15 s by the other speaker (Whisper glues "Yes, and ..."), back-channels mixed on top of the
other speaker, interruptions, 3 and 4 speakers, speaker changes under 0.2 s and over 2 s,
a 30+ s monologue, fast alternation of short sentences, questions answered by one word.
Tags are DERIVED from the final timeline (see `derive_tags`), so they are true of the files.

An utterance is one espeak-ng call (mostly one sentence); a turn is a run of one speaker's
utterances, separated by short pauses. Text comes from templates and word banks per topic
(stand-up, support call, planning, interview, product review), drawn with the seed.

Deterministic: the same seed (and espeak-ng build) gives the same bytes; different seeds give
different topics, sentences, voices, timings. Only the standard library, numpy, soundfile.
"""
from __future__ import annotations

import argparse
import functools
import itertools
import json
import re
import shutil
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
SPEAKER_LABELS = ("alice", "bob", "carol", "dave")
MIN_DURATION, MAX_DURATION = 20.0, 60.0

REQUIRED_TAGS = (
    "oneword-turn",             # a whole turn that is one word ("Yes.")
    "oneword-turn-start",       # a turn that starts with a one-word utterance
    "oneword-turn-middle",      # ... has one in the middle
    "oneword-turn-end",         # ... ends with one
    "oneword-then-other",       # a one-word utterance, then another speaker within 0.15 s
    "question-oneword-answer",  # a question answered by a one-word turn
    "backchannel-overlap",      # a back-channel mixed on top of another speaker
    "gap-short",                # a speaker change with a gap under 0.2 s
    "gap-long",                 # a speaker change with a gap over 2 s
    "monologue",                # one speaker's turn of 30 s or more
    "fast-alternation",         # 6+ consecutive turns of at most 2.5 s each
    "3-speakers",
    "4-speakers",
)


# ------------------------------------------------------------------------------ voices
@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: `-v <voice> -p <pitch> -s <speed>`."""
    key: str
    voice: str
    pitch: int = 50
    speed: int = 165

    def argv(self, executable: str) -> list[str]:
        return [executable, "-v", self.voice, "-p", str(self.pitch), "-s", str(self.speed), "--stdout"]


# The voices, checked with the real pipeline (pyannote-campplus: segmentation-3.0 + CAM++,
# centroid clustering at 0.75, no speaker count given) on two-speaker versions of the
# `short_gaps`, `questions` and `oneword_glued` scenarios (seeds 0 and 1): every pair of this
# pool had <= 0.5% confusion (collar 0.5), except low_male~m7_male (1.8-2.3%), which is
# CONFUSABLE and only drawn when a conversation needs four voices.
# What did NOT separate (confusion > 1.5% or merged): for CAM++ all espeak male variants are
# one voice at similar pitch (en-us, +m1, +m7, +quincy, +Andy, +klatt, +Storm, +Gene, +Michael,
# +edward: pairwise 4-50%); a male needs a pitch gap of ~50 (-p 10 vs -p 65) to stand apart,
# and a male at -p 85 collides with the female voices. Among females, en+f1 merges with en+f2,
# en+f4, en-us+f5, en-us+linda, en-us+Annie, en-us+Alicia (and 3-15% with en-us+f3, +anika,
# +grandma); en-us+steph with en-us+f3, +anika, +Alicia, +grandma, +linda (2-30%). Male vs
# female pairs separate. Accent alone (en-us vs en-gb, scotland, rp, nyc, 029) changes nothing
# for CAM++, and `en-gb+<variant>` silently ignores the variant in espeak-ng 1.51 (use
# `en+<variant>` for British English).
VOICES: tuple[Voice, ...] = (
    Voice("low_male", "en-us", 10, 150),
    Voice("m7_male", "en-us+m7", 65, 175),
    Voice("steph_female", "en-us+steph", 55, 170),
    Voice("gb_f1_female", "en+f1", 60, 160),
)
CONFUSABLE: frozenset[frozenset[str]] = frozenset({frozenset(("low_male", "m7_male"))})  # by Voice.key


def confusable_pairs(voices: Iterable[Voice]) -> list[tuple[str, str]]:
    """The pairs of `voices` (keys) the diarizer may mix up (see CONFUSABLE)."""
    keys = [v.key for v in voices]
    return [(a, b) for i, a in enumerate(keys) for b in keys[i + 1:] if frozenset((a, b)) in CONFUSABLE]


def draw_voices(rng: np.random.Generator, k: int, pool: Sequence[Voice] = VOICES) -> list[Voice]:
    """k distinct voices of `pool` in random order, among the sets with the fewest CONFUSABLE pairs."""
    if k > len(pool):
        raise ValueError(f"{k} speakers but only {len(pool)} voices in the pool")
    sets = list(itertools.combinations(range(len(pool)), k))
    weak = [len(confusable_pairs(pool[i] for i in c)) for c in sets]
    sets = [c for c, w in zip(sets, weak) if w == min(weak)]
    chosen = sets[int(rng.integers(len(sets)))]
    return [pool[int(i)] for i in rng.permutation(chosen)]

# What espeak-ng is given for a reference text it would mispronounce ("Mhm." is spelled out
# letter by letter): espeak phoneme input.
SPOKEN = {
    "Mhm.": "[[m:'hm:]]",
    "Mm-hmm.": "[[m:'hm:]]",
}


def espeak_executable() -> str | None:
    return shutil.which("espeak-ng")


def espeak_available() -> bool:
    return espeak_executable() is not None


def _parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """espeak-ng --stdout: a RIFF header with unreliable sizes, then int16 PCM to the end."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeError("espeak-ng did not write a WAV stream")
    rate = int.from_bytes(data[24:28], "little")
    pos = data.find(b"data", 12)
    if pos < 0:
        raise RuntimeError("espeak-ng WAV stream without a data chunk")
    pcm = data[pos + 8:]
    pcm = pcm[: len(pcm) // 2 * 2]
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0, rate


@functools.lru_cache(maxsize=8)
def _polyphase(rate_in: int, rate_out: int, half_width: int) -> tuple[int, int, np.ndarray]:
    """Kaiser-windowed sinc taps for every phase of rate_in/rate_out = p/q: (p, q, h[q, taps])."""
    ratio = Fraction(rate_in, rate_out)
    p, q = ratio.numerator, ratio.denominator
    cutoff = 0.5 * min(1.0, rate_out / rate_in) * 0.94  # cycles per input sample
    d = (np.arange(q) / q)[:, None] - np.arange(-half_width + 1, half_width + 1)[None, :]
    window = np.i0(8.0 * np.sqrt(np.clip(1.0 - (d / half_width) ** 2, 0.0, 1.0))) / np.i0(8.0)
    return p, q, 2 * cutoff * np.sinc(2 * cutoff * d) * window


def resample(x: np.ndarray, rate_in: int, rate_out: int, half_width: int = 24) -> np.ndarray:
    """Band-limited resampling (polyphase Kaiser-windowed sinc), numpy only, deterministic."""
    x = np.asarray(x, dtype=np.float64)
    if rate_in == rate_out or len(x) == 0:
        return x
    p, q, h = _polyphase(rate_in, rate_out, half_width)
    n_out = len(x) * q // p
    taps = np.arange(-half_width + 1, half_width + 1) + half_width
    padded = np.pad(x, (half_width, half_width + 1))
    out = np.empty(n_out)
    for lo in range(0, n_out, 16384):
        num = np.arange(lo, min(n_out, lo + 16384), dtype=np.int64) * p
        base, phase = num // q, num % q
        out[lo:lo + len(num)] = np.einsum("ij,ij->i", padded[base[:, None] + taps[None, :]], h[phase])
    return out


def voiced_extent(x: np.ndarray, rate: int = SAMPLE_RATE, frame_s: float = 0.005,
                  rel_db: float = -42.0, abs_db: float = -66.0) -> tuple[int, int]:
    """[start, end) samples of the voiced part: the first and last 5 ms frames whose RMS is
    within `rel_db` of the loudest frame (and above `abs_db` dBFS). (0, 0) if silent."""
    hop = max(1, int(rate * frame_s))
    n = len(x) // hop
    if n == 0:
        return 0, 0
    rms = np.sqrt(np.mean(np.square(x[: n * hop]).reshape(n, hop), axis=1))
    threshold = max(rms.max() * 10 ** (rel_db / 20), 10 ** (abs_db / 20))
    active = np.nonzero(rms > threshold)[0]
    if len(active) == 0:
        return 0, 0
    return int(active[0] * hop), int(min(len(x), (active[-1] + 1) * hop))


class Synth:
    """espeak-ng -> trimmed, level-normalised 16 kHz float64 clips, cached per (voice, text)."""

    TARGET_DBFS = -20.0  # RMS over the clip's active frames

    def __init__(self, executable: str | None = None):
        self.executable = executable or espeak_executable()
        if not self.executable:
            raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
        self._cache: dict[tuple[Voice, str], np.ndarray] = {}
        self._lock = threading.Lock()
        self.calls = 0

    def __call__(self, voice: Voice, text: str) -> np.ndarray:
        key = (voice, text)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        spoken = SPOKEN.get(text, text)
        proc = subprocess.run(voice.argv(self.executable) + [spoken], capture_output=True, check=True)
        raw, rate = _parse_wav(proc.stdout)
        x = resample(raw, rate, SAMPLE_RATE)
        start, end = voiced_extent(x)
        if end - start < int(0.05 * SAMPLE_RATE):
            raise RuntimeError(f"espeak-ng produced no speech for {text!r} with {voice}")
        x = x[start:end].copy()
        fade = min(len(x) // 4, int(0.003 * SAMPLE_RATE))  # 3 ms: no click at the cut
        if fade:
            ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
            x[:fade] *= ramp
            x[-fade:] *= ramp[::-1]
        hop = int(0.02 * SAMPLE_RATE)
        frames = x[: len(x) // hop * hop].reshape(-1, hop) if len(x) >= hop else x.reshape(1, -1)
        rms = np.sqrt(np.mean(frames ** 2, axis=1))
        level = np.sqrt(np.mean(rms[rms > rms.max() * 0.1] ** 2))
        x *= 10 ** (self.TARGET_DBFS / 20) / level
        x.setflags(write=False)
        with self._lock:
            self.calls += 1
            self._cache[key] = x
        return x


# ------------------------------------------------------------------------------ text
COMMON_SLOTS = {
    "name": ["Maria", "David", "Priya", "Tom", "Sarah", "Kevin", "Laura", "James", "Nina",
             "Omar", "Emma", "Lucas", "Hannah", "Victor"],
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
    "time": ["nine o'clock", "ten thirty", "noon", "two in the afternoon", "four o'clock"],
    "number": ["two", "three", "four", "five", "six", "ten", "twelve", "fifteen", "twenty"],
}

ONE_WORD = ("Yes.", "Okay.", "Right.", "Sure.", "No.")
ONE_WORD_EXTRA = ("Yeah.", "Exactly.", "Perfect.", "Correct.", "Great.")
BACKCHANNELS = ("Mhm.", "Yeah.", "Right.", "Okay.", "Sure.")
CONNECTIVES = ("And", "So", "But", "Then", "Also")

# A few topic-free short exchanges (question, answer) for fast alternation.
SHORT_PAIRS = [
    ("Which one?", "The second one."), ("When?", "After lunch."), ("Who's on it?", "Nina is."),
    ("How long?", "About an hour."), ("Where is it?", "In the shared folder."),
    ("Is that new?", "Since last week."), ("Can you check?", "I'm on it."),
    ("Any questions?", "Not from me."), ("Ready?", "Almost."), ("Did it work?", "Not yet."),
    ("What changed?", "Only the settings."), ("Who asked for it?", "The sales team."),
    ("Is it urgent?", "Not really."), ("How many?", "About twenty."),
    ("Should I wait?", "Go ahead."), ("What time?", "Around four."),
    ("Same as before?", "A little faster."), ("Who's next?", "I think I am."),
    ("Want me to do it?", "That would help."), ("Is it fixed?", "Looks like it."),
    ("Do we have numbers?", "Only rough ones."), ("Where are we?", "Halfway there."),
]

TOPICS: dict[str, dict[str, list[str]]] = {
    "standup": {
        "feature": ["login page", "search service", "billing report", "mobile app", "payment flow",
                    "data export", "settings screen", "notification service", "admin dashboard"],
        "task": ["fixing the flaky tests", "reviewing pull requests", "updating the documentation",
                 "migrating the database", "cleaning up the logging", "writing the release notes"],
        "opener": ["Good morning everyone, let's start the stand-up.",
                   "Okay, let's go around the room quickly.", "Morning all, who wants to start today?"],
        "closer": ["Thanks everyone, that's it for today.", "Great, let's get back to work.",
                   "Okay, see you all tomorrow at the same time."],
        "statement": [
            "Yesterday I worked on the {feature} and finished most of it.",
            "Today I'm going to continue {task}.",
            "I'm blocked on the {feature} until {name} reviews my changes.",
            "The {feature} is deployed to staging now.",
            "We found a bug in the {feature} that only shows up on older phones.",
            "I paired with {name} on {task} this morning.",
            "I should have a first version of the {feature} ready by {day}.",
            "The build was broken for about an hour, but it's green again.",
            "I'll need some help with {task} later today.",
            "Most of my time went into {task}.",
            "The {feature} is about {number} times faster after the last change.",
            "I opened a ticket for the crash in the {feature}.",
            "Our test coverage for the {feature} is still pretty low.",
            "I want to finish {task} before I pick up anything new.",
        ],
        "question": ["Is the {feature} ready for review?", "Did you talk to {name} about the {feature}?",
                     "Can you take a look at my pull request today?", "Are we still releasing on {day}?",
                     "Is staging working again?", "Do you need help with {task}?",
                     "Did the nightly build pass?", "Is the {feature} behind a feature flag?"],
        "yes": ["I merged it about an hour ago.", "I'll send you the link after the stand-up.",
                "It went out with last night's build.", "{name} helped me with the last part."],
        "no": ["Not yet, I'll do it after lunch.", "I didn't get to it yesterday.",
               "We moved it to {day}.", "It still fails on one of the tests."],
        "monologue": [
            "So the main problem with the {feature} was the way we cached the user settings.",
            "Every request loaded the whole profile from the database, even when nothing had changed.",
            "I added a small cache in front of it and the response time dropped a lot.",
            "The tricky part was making sure the cache is cleared when someone updates their profile.",
            "I wrote tests for the usual cases, and {name} suggested a few more for the edge cases.",
            "There is still one case I'm not sure about, when two devices change the same setting.",
            "For now the last write wins, which I think is fine for this release.",
            "I also cleaned up the logging, because we were writing the same message three times.",
            "The dashboards should look a lot quieter from today.",
            "If anyone sees strange numbers in the {feature}, please tell me right away.",
            "Next I want to look at the {feature}, which has a similar problem.",
            "I expect that to take about {number} days, maybe less if the tests are in good shape.",
            "After that I can help with {task} if we still need it.",
            "That's everything from my side.",
        ],
    },
    "support": {
        "device": ["router", "laptop", "printer", "phone", "smart speaker", "tablet", "modem"],
        "problem": ["keeps disconnecting", "won't turn on", "shows an error message", "is very slow",
                    "restarts by itself", "doesn't connect to the app"],
        "opener": ["Thank you for calling customer support, this is {name}, how can I help?",
                   "Hi, thanks for waiting, you're through to technical support.",
                   "Hello, this is {name} from the help desk, what can I do for you?"],
        "closer": ["Is there anything else I can help you with today?",
                   "Thanks for calling, have a great day.", "Great, I'm glad that's sorted out."],
        "statement": [
            "My {device} {problem} since the update last week.",
            "I already tried turning it off and on again.",
            "The light on the front is blinking orange.",
            "Let me pull up your account, it will just take a moment.",
            "I can see your {device} on our system, it was registered in March.",
            "Please hold the reset button for about ten seconds.",
            "I'm going to send a new configuration to your {device} now.",
            "It worked fine until {day}, and then it suddenly stopped.",
            "I'm calling from my neighbour's phone because mine is not working.",
            "You should get an email with the case number in a few minutes.",
            "If that doesn't help, we can send a technician on {day}.",
            "The warranty still covers the {device} for another year.",
            "I bought it about {number} months ago from your online store.",
            "Could you read me the serial number on the back of the {device}?",
        ],
        "question": ["Is the {device} plugged in right now?", "Did you install the latest update?",
                     "Can you see the light on the front?", "Is this the number we can call you back on?",
                     "Have you changed the password recently?", "Are you near the {device} at the moment?",
                     "Did that fix the problem?", "Is the account in your name?"],
        "yes": ["It's right here in front of me.", "I did that this morning.",
                "I updated it yesterday evening.", "The light is green now."],
        "no": ["I'm at work right now, unfortunately.", "I didn't know there was an update.",
               "It's still blinking orange.", "It's in my husband's name."],
        "monologue": [
            "Okay, so let me explain what I think is happening with your {device}.",
            "The last update changed the way it connects to the network.",
            "Some older models lose the connection when the signal is weak.",
            "What we can do is move it to a different channel, which is usually less crowded.",
            "I'm going to make that change from here, you don't need to do anything yet.",
            "After that, the {device} will restart, and that can take a couple of minutes.",
            "When it comes back, the light on the front should turn green.",
            "If it stays orange for more than five minutes, please unplug it and plug it back in.",
            "I'll also open a case, so that if you call again the next person can see all of this.",
            "The case number will be in the email I mentioned.",
            "In the meantime, please don't reset it to factory settings.",
            "That would remove the changes I'm making now, and we would have to start over.",
            "If everything works, you don't need to do anything else.",
            "And if it doesn't, we'll send someone to look at it on {day}.",
        ],
    },
    "planning": {
        "event": ["team offsite", "product launch", "customer workshop", "quarterly review",
                  "summer party", "training day"],
        "place": ["the main office", "a hotel downtown", "the conference center", "the old warehouse",
                  "the rooftop terrace"],
        "opener": ["Okay, let's start planning the {event}.", "Thanks for joining, we need to decide a few things about the {event}.",
                   "Let's use the next half hour for the {event}."],
        "closer": ["Great, I'll send a summary after the meeting.", "Thanks everyone, let's meet again on {day}.",
                   "Okay, I think we have a plan."],
        "statement": [
            "I think we should hold the {event} at {place}.",
            "The budget for the {event} is about {number} thousand dollars.",
            "We need to book the room at least {number} weeks in advance.",
            "Last year the catering was the biggest problem.",
            "I can ask {name} to handle the invitations.",
            "Most people prefer a date in the middle of the week.",
            "The venue can hold around two hundred people.",
            "I'd rather keep the agenda short this time.",
            "We should send the first invitations by {day}.",
            "Parking at {place} is a bit difficult.",
            "I'll prepare a draft of the schedule and share it with everyone.",
            "We still need someone to give the opening talk.",
            "The train station is only a short walk from {place}.",
            "I would keep the afternoon free for informal meetings.",
        ],
        "question": ["Do we have a date yet?", "Is {place} still available?", "Can we afford a second day?",
                     "Did {name} confirm the speakers?", "Should we invite the new customers?",
                     "Is the budget already approved?", "Do we need a projector?", "Are we doing a dinner?"],
        "yes": ["I checked with them this morning.", "{name} confirmed it yesterday.",
                "Finance approved it on {day}.", "I already put it in the calendar."],
        "no": ["We're still waiting for an answer.", "Not yet, maybe next week.",
               "It's too expensive this year.", "Nobody has asked them so far."],
        "monologue": [
            "Let me go through the plan for the {event} from the beginning.",
            "We start at nine with coffee, and the opening talk is at half past nine.",
            "After that we split into three groups, each with its own room.",
            "The groups work on the topics we collected in the survey last month.",
            "Lunch is at {place}, which is about five minutes away on foot.",
            "In the afternoon each group presents what they found, ten minutes each.",
            "Then we have a longer break, because last time people asked for more time to talk.",
            "The day ends with a short summary and a few words from the management.",
            "For the evening we reserved a table for dinner, but that part is optional.",
            "The budget covers the rooms, the food, and the travel for people from other offices.",
            "We are still a little over budget, mostly because of the catering.",
            "I think we can fix that by choosing a simpler lunch.",
            "I'll send the full schedule to everyone by {day}.",
            "Please tell me before then if something doesn't work for your team.",
        ],
    },
    "interview": {
        "role": ["backend engineer", "project manager", "data analyst", "designer", "support lead"],
        "skill": ["Python", "public speaking", "project planning", "customer research", "statistics",
                  "team leadership"],
        "opener": ["Thanks for coming in today, let's get started.", "Welcome, and thanks for making the time.",
                   "Hi, nice to meet you, please take a seat."],
        "closer": ["Thank you, we'll get back to you by {day}.", "That's all my questions, thanks a lot.",
                   "It was great talking to you."],
        "statement": [
            "I've been working as a {role} for about {number} years.",
            "In my last job I was responsible for a team of {number} people.",
            "I really enjoy working with {skill}.",
            "The role is mostly about {skill}, with some travel.",
            "We're a small team, so everyone does a bit of everything.",
            "I moved here from another city about two years ago.",
            "My biggest project was a new system for handling customer orders.",
            "I learned {skill} mostly on the job.",
            "The team you would join has {number} people at the moment.",
            "We usually work from the office three days a week.",
            "I'm looking for a place where I can learn from more experienced people.",
            "We would like the new {role} to start by {day}.",
            "I like to plan my week on Monday morning.",
            "I try to write things down so that others can pick them up.",
        ],
        "question": ["Have you worked with {skill} before?", "Are you comfortable with some travel?",
                     "Did you lead a team in your last job?", "Can you start within a month?",
                     "Is the position open to remote work?", "Have you used our product before?",
                     "Do you have any questions for us?", "Would you be happy to work in a small team?"],
        "yes": ["I used it every day in my last job.", "I did that for about two years.",
                "I can start at the beginning of next month.", "I actually prefer small teams."],
        "no": ["Not directly, but I'm keen to learn.", "I'd need about two months' notice.",
               "Only as a customer, a long time ago.", "Not at the moment, thank you."],
        "monologue": [
            "Sure, let me tell you a bit about my background.",
            "I studied economics, but I started programming during my second year.",
            "My first job was at a small company that built software for hospitals.",
            "There I learned how important it is to talk to the people who actually use the product.",
            "After three years I moved to a larger company as a {role}.",
            "The team was spread across four countries, so communication was a big part of the work.",
            "We introduced short weekly demos, and that helped a lot.",
            "My biggest project there was a new system for handling customer orders.",
            "It replaced an old tool that nobody wanted to touch anymore.",
            "We shipped it in small steps, so that nothing broke for the customers.",
            "I learned a lot about {skill} in that project.",
            "Now I'm looking for a smaller company where I can have more influence.",
            "That's why this position caught my attention.",
            "I think my experience with {skill} would fit well with your team.",
        ],
    },
    "review": {
        "product": ["new website", "mobile app", "onboarding flow", "pricing page", "checkout",
                    "help center"],
        "metric": ["sign-ups", "conversion", "page load time", "support tickets", "daily active users"],
        "opener": ["Let's review how the {product} is doing.", "Okay, first item is the {product}.",
                   "Thanks everyone, I want to look at the numbers for the {product}."],
        "closer": ["Good, let's check the numbers again in two weeks.", "Thanks, that was useful.",
                   "Okay, I'll write down the action items."],
        "statement": [
            "The {metric} went up by about {number} percent since the launch.",
            "Most of the feedback about the {product} is positive.",
            "People still get lost on the second step.",
            "The {metric} dropped a little in the last week.",
            "I think the old design was easier to understand.",
            "We should run a small test with two versions of the {product}.",
            "The support team is getting fewer questions about prices.",
            "Mobile users behave quite differently from desktop users.",
            "{name} is collecting the numbers from the last quarter.",
            "We made the buttons bigger after the first round of feedback.",
            "I'd like to see the {metric} split by country.",
            "The new text on the {product} seems to help.",
            "We haven't changed anything since {day}.",
            "The biggest complaint is still the loading time.",
        ],
        "question": ["Is the {metric} better than last month?", "Did we fix the bug on the {product}?",
                     "Can we share these numbers with the whole team?", "Are the results significant?",
                     "Is the new design live for everyone?", "Did {name} see the feedback?",
                     "Should we keep the old version running?", "Do we have data for mobile users?"],
        "yes": ["It's about ten percent higher.", "The fix went out on {day}.",
                "{name} sent me the report this morning.", "I checked it before the meeting."],
        "no": ["It's still only live for half of the users.", "We need another week of data.",
               "The bug is still there on older browsers.", "Not everyone has seen it yet."],
        "monologue": [
            "Let me walk you through the numbers for the {product}.",
            "In the first week after the launch, the {metric} went up quite a bit.",
            "Part of that was the newsletter, so we shouldn't read too much into it.",
            "In the second week things settled down, but they stayed above the old level.",
            "The most interesting part is the difference between mobile and desktop.",
            "On mobile, people finish the first step much faster than before.",
            "On desktop, they spend more time on the page, but fewer of them continue.",
            "We think that's because the new layout pushes the main button down.",
            "{name} has a few ideas for fixing that without a full redesign.",
            "We'll test them next week with a small group of users.",
            "On the support side, the number of tickets about prices went down.",
            "That was one of our goals, so I'm quite happy with that.",
            "The open question is whether the effect lasts longer than a month.",
            "I suggest we look at the same numbers again at the end of the month.",
        ],
    },
}


SENTENCE_KINDS = ("opener", "closer", "statement", "question", "yes", "no", "monologue")


class Bank:
    """Draws topic sentences for one conversation, without repeats where possible."""

    def __init__(self, rng: np.random.Generator, topic: str):
        self.rng, self.topic, self.words = rng, topic, TOPICS[topic]
        self.used: set[str] = set()
        self._monologue = 0
        # the topic's own slots (feature, device, ...) keep to two values per conversation
        self.slots = {k: [v[int(i)] for i in rng.choice(len(v), size=2, replace=False)]
                      for k, v in self.words.items() if k not in SENTENCE_KINDS}

    def _fill(self, template: str, first: bool = False) -> str:
        def slot(m: re.Match) -> str:
            options = self.slots.get(m.group(1)) or COMMON_SLOTS[m.group(1)]
            return options[0] if first else options[int(self.rng.integers(len(options)))]
        text = re.sub(r"\{(\w+)\}", slot, template)
        return text[0].upper() + text[1:]

    def pick(self, kind: str, keep: Callable[[str], bool] = lambda template: True) -> str:
        """A sentence of `kind` from a template not used yet in this conversation (once all
        are used, a new filling of any)."""
        usable = [x for x in self.words[kind] if keep(x)]
        templates = [x for x in usable if x not in self.used] or usable
        for _ in range(30):
            template = templates[int(self.rng.integers(len(templates)))]
            text = self._fill(template)
            if text not in self.used:
                break
        self.used.update((text, template))
        return text

    def statement(self) -> str:
        return self.pick("statement")

    def question(self) -> str:
        return self.pick("question")

    def follow(self, answer: str) -> str:
        return self.pick("no" if answer == "No." else "yes")

    def monologue(self) -> str:
        """The topic's monologue sentences in order (a coherent story), then statements."""
        lines = self.words["monologue"]
        if self._monologue < len(lines):
            self._monologue += 1
            text = self._fill(lines[self._monologue - 1], first=True)  # one story, one subject
            self.used.add(text)
            return text
        return self.statement()

    def connected(self) -> str:
        """A statement opened by a connective ("And ...", "So ..."): invites a glued 'Yes, and'."""
        text = self.pick("statement", keep=lambda template: not template.endswith("?"))
        first, rest = text.split(" ", 1)
        if first not in ("I", "I'm", "I'd", "I'll", "I've") and first not in COMMON_SLOTS["name"]:
            first = first.lower()
        return f"{self.choice(CONNECTIVES)} {first} {rest}"

    def short_pair(self) -> tuple[str, str]:
        for _ in range(30):
            q, a = SHORT_PAIRS[int(self.rng.integers(len(SHORT_PAIRS)))]
            if q not in self.used:
                break
        self.used.add(q)
        return q, a

    def one_word(self, extra: bool = True) -> str:
        pool = ONE_WORD + (ONE_WORD_EXTRA if extra and self.rng.random() < 0.3 else ())
        return self.choice(pool)

    def answer(self) -> str:
        return self.choice(("Yes.", "No.", "Yes.", "Sure.", "Right.", "Yeah.", "No.", "Correct."))

    def backchannel(self) -> str:
        return self.choice(BACKCHANNELS)

    def choice(self, options: Sequence[str]) -> str:
        return options[int(self.rng.integers(len(options)))]


# ------------------------------------------------------------------------------ timeline
@dataclass
class Segment:
    speaker: str
    text: str
    start: int            # samples, voiced extent
    end: int
    overlay: bool = False  # a back-channel mixed on top of another speaker

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.end / SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


@dataclass
class Conversation:
    uri: str
    scenario: str
    seed: int
    topic: str
    voices: dict[str, Voice]
    segments: list[Segment]
    audio: np.ndarray          # float32, 16 kHz mono
    tags: list[str]

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


class Timeline:
    """Places utterances one after another (gaps measured between voiced extents)."""

    def __init__(self, rng: np.random.Generator, synth: Synth, voices: dict[str, Voice],
                 gains_db: dict[str, float]):
        self.rng, self.synth, self.voices, self.gains_db = rng, synth, voices, gains_db
        self.segments: list[Segment] = []
        self.clips: list[np.ndarray] = []
        self.cursor = self.seconds(rng.uniform(0.3, 1.0))  # end of the last main utterance
        self.last: Segment | None = None
        # defaults a scenario may change: the silence before another speaker, and within a turn
        self.change_gap = (0.3, 0.9)
        self.pause = (0.2, 0.5)

    @staticmethod
    def seconds(t: float) -> int:
        return int(round(t * SAMPLE_RATE))

    @property
    def duration(self) -> float:
        return self.cursor / SAMPLE_RATE

    def speech(self, speaker: str) -> float:
        return sum(s.end - s.start for s in self.segments if s.speaker == speaker) / SAMPLE_RATE

    def _clip(self, speaker: str, text: str, extra_db: float = 0.0) -> np.ndarray:
        clip = self.synth(self.voices[speaker], text)
        return clip * 10 ** ((self.gains_db[speaker] + extra_db) / 20)

    def say(self, speaker: str, text: str, gap: float | None = None) -> Segment:
        """`text` by `speaker`, starting `gap` s after the end of the previous main utterance
        (negative: overlapping it). Default gap: `change_gap` on a speaker change, else `pause`."""
        if gap is None:
            lo, hi = self.pause if self.last and self.last.speaker == speaker else self.change_gap
            gap = float(self.rng.uniform(lo, hi))
        clip = self._clip(speaker, text)
        start = max(0, self.cursor + self.seconds(gap))
        seg = Segment(speaker, text, start, start + len(clip))
        self.segments.append(seg)
        self.clips.append(clip)
        self.cursor = max(self.cursor, seg.end)
        self.last = seg
        return seg

    def turn(self, speaker: str, texts: Iterable[str], gap: float | None = None) -> list[Segment]:
        segs = []
        for i, text in enumerate(texts):
            segs.append(self.say(speaker, text, gap if i == 0 else None))
        return segs

    def backchannel(self, speaker: str, text: str, over: Segment, at: float | None = None) -> Segment | None:
        """`text` by `speaker` mixed on top of `over` (fully inside it), 3 dB quieter."""
        clip = self._clip(speaker, text, extra_db=-3.0)
        room = (over.end - over.start) - len(clip) - self.seconds(0.5)
        if room <= 0:
            return None
        at = float(self.rng.uniform(0.35, 0.8)) if at is None else at
        start = over.start + self.seconds(0.25) + int(room * at)
        seg = Segment(speaker, text, start, start + len(clip), overlay=True)
        self.segments.append(seg)
        self.clips.append(clip)
        return seg

    def mix(self, tail: float, noise_dbfs: float | None) -> np.ndarray:
        total = self.cursor + self.seconds(tail)
        out = np.zeros(total)
        for seg, clip in zip(self.segments, self.clips):
            out[seg.start:seg.end] += clip
        if noise_dbfs is not None:
            out += self.rng.standard_normal(total) * 10 ** (noise_dbfs / 20)
        peak = np.abs(out).max()
        if peak > 0.89:
            out *= 0.89 / peak
        return out.astype(np.float32)


# ------------------------------------------------------------------------------ scenarios
@dataclass(frozen=True)
class Scenario:
    name: str
    speakers: int
    build: Callable[[Timeline, Bank, list[str]], None]
    intended: tuple[str, ...]     # tags the scenario must produce (checked by the tests)
    topics: tuple[str, ...] = tuple(TOPICS)


def _maybe(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def _next(t: Timeline, spk: list[str], exclude: Iterable[int]) -> int:
    """A random one of the two least-heard speakers (index), so everyone gets enough speech."""
    candidates = sorted((k for k in range(len(spk)) if k not in set(exclude)), key=lambda k: t.speech(spk[k]))
    return candidates[int(t.rng.integers(min(2, len(candidates))))]


def _qa_oneword(t: Timeline, b: Bank, asker: str, answerer: str, gap: float | None = None) -> None:
    """A yes/no question answered by a one-word turn; the asker goes on."""
    t.say(asker, b.question())
    answer = b.answer()
    t.say(answerer, answer, gap)
    t.say(asker, b.statement())


def _glued(t: Timeline, b: Bank, first: str, second: str) -> None:
    """`first` says one word; `second` starts a sentence within 0.02-0.14 s."""
    t.say(first, b.one_word())
    t.say(second, b.connected() if _maybe(t.rng, 0.7) else b.statement(), gap=float(t.rng.uniform(0.02, 0.14)))


def s_oneword_answers(t: Timeline, b: Bank, spk: list[str]) -> None:
    a, c = spk
    t.say(a, b.pick("opener"))
    t.turn(c, [b.statement(), b.statement()])  # enough of c's voice to recognise it
    target = t.rng.uniform(28, 40)
    while t.duration < target:
        _qa_oneword(t, b, a, c)
        if _maybe(t.rng, 0.5) or "oneword-turn-start" not in derive_tags(t.segments):
            answer = b.answer()
            t.say(a, b.question())
            t.turn(c, [answer, b.follow(answer)])  # one word at the start of a turn
    t.say(a, b.pick("closer"))


def s_oneword_positions(t: Timeline, b: Bank, spk: list[str]) -> None:
    a, c = spk
    t.say(a, b.pick("opener"))
    target = t.rng.uniform(30, 42)
    kinds = ["start", "middle", "end"]
    i = 0
    while t.duration < target:
        kind = kinds[i % 3]
        who = (c, a)[i % 2]  # not a, who has just opened
        if kind == "start":
            t.turn(who, [b.one_word(), b.statement(), b.statement()])
        elif kind == "middle":
            t.turn(who, [b.statement(), b.one_word(), b.statement()])
        else:
            t.turn(who, [b.statement(), b.statement(), b.one_word()])
        i += 1
    t.say(a if i % 2 else c, b.one_word(extra=False))  # and a whole one-word turn by the other


def s_oneword_glued(t: Timeline, b: Bank, spk: list[str]) -> None:
    a, c = spk
    t.say(a, b.pick("opener"))
    target = t.rng.uniform(26, 36)
    while t.duration < target:
        t.say(c, b.statement())
        _glued(t, b, a, c)
        t.say(a, b.statement())
        if _maybe(t.rng, 0.6):
            t.say(c, b.question())
            t.say(a, b.answer())
            t.say(c, b.connected(), gap=float(t.rng.uniform(0.02, 0.14)))
    t.say(a, b.pick("closer"))


def _listened_turn(t: Timeline, b: Bank, speaker: str, listeners: list[str], n: int, p: float = 0.6) -> None:
    """A turn of n statements; listeners drop back-channels on top of some of them."""
    segs = t.turn(speaker, [b.statement() for _ in range(n)])
    placed = False
    for i, seg in enumerate(segs):
        if (not placed and i == len(segs) - 1) or _maybe(t.rng, p):
            placed |= t.backchannel(b.choice(listeners), b.backchannel(), seg) is not None


def s_backchannels(t: Timeline, b: Bank, spk: list[str]) -> None:
    a, c = spk
    t.say(a, b.pick("opener"))
    target = t.rng.uniform(32, 43)
    who = 0
    while t.duration < target:
        _listened_turn(t, b, spk[who], [spk[1 - who]], int(t.rng.integers(3, 5)))
        who = 1 - who
    t.say(spk[who], b.one_word(extra=False))


def s_backchannels_3spk(t: Timeline, b: Bank, spk: list[str]) -> None:
    t.say(spk[0], b.pick("opener"))
    target = t.rng.uniform(30, 40)
    order = [1, 2, 0, 1, 2, 0, 1, 2]
    for k in order:
        if t.duration >= target:
            break
        _listened_turn(t, b, spk[k], [s for s in spk if s != spk[k]], int(t.rng.integers(2, 4)))
    t.say(spk[0], b.pick("closer"))


def s_three_speakers(t: Timeline, b: Bank, spk: list[str]) -> None:
    t.say(spk[0], b.pick("opener"))
    t.turn(spk[1], [b.statement(), b.statement()])  # everyone speaks a few sentences
    t.turn(spk[2], [b.one_word(), b.statement(), b.statement()])
    target = t.rng.uniform(30, 42)
    last = 2
    while t.duration < target:
        nxt = _next(t, spk, [last])
        r = t.rng.random()
        if r < 0.25:
            _qa_oneword(t, b, spk[last], spk[nxt])
        elif r < 0.45:
            t.turn(spk[nxt], [b.one_word(), b.statement()])
        else:
            t.turn(spk[nxt], [b.statement() for _ in range(int(t.rng.integers(1, 3)))])
        last = [spk.index(s.speaker) for s in t.segments if not s.overlay][-1]
    t.say(spk[1 if last == 0 else 3 - last], b.one_word(extra=False))  # neither `last` nor spk[0]
    t.say(spk[0], b.pick("closer"))


def s_four_speakers(t: Timeline, b: Bank, spk: list[str]) -> None:
    t.say(spk[0], b.pick("opener"))
    for k in (1, 2, 3):
        t.turn(spk[k], [b.statement(), b.statement()])
        r = t.rng.random()
        if r < 0.4:
            t.say(spk[0], b.one_word(extra=False))
        elif r < 0.7:
            other = spk[int(t.rng.choice([j for j in range(4) if j != k]))]
            t.say(other, b.question())
            t.say(spk[k], b.answer())
    t.turn(spk[0], [b.statement(), b.pick("closer")])


def s_four_speakers_crosstalk(t: Timeline, b: Bank, spk: list[str]) -> None:
    t.change_gap = (0.1, 0.5)
    t.say(spk[0], b.pick("opener"))
    _glued(t, b, spk[1], spk[2])
    t.say(spk[3], b.statement())
    target = t.rng.uniform(32, 44)
    last = 3
    while t.duration < target:
        nxt = _next(t, spk, [last])
        r = t.rng.random()
        if r < 0.3:
            seg = t.say(spk[nxt], b.statement())
            t.backchannel(spk[int(t.rng.choice([k for k in range(4) if k != nxt]))], b.backchannel(), seg)
        elif r < 0.55:
            q, a = b.short_pair()
            t.say(spk[nxt], q)
            nxt2 = _next(t, spk, [nxt])
            t.say(spk[nxt2], a)
            nxt = nxt2
        elif r < 0.75:  # someone says one word, nxt comes in right after it
            _glued(t, b, spk[int(t.rng.choice([k for k in range(4) if k != nxt]))], spk[nxt])
        else:
            t.say(spk[nxt], b.statement())
        last = nxt
    t.say(spk[(last + 1) % 4], b.pick("closer"))


def s_short_gaps(t: Timeline, b: Bank, spk: list[str]) -> None:
    t.change_gap = (0.04, 0.19)
    a, c = spk
    t.say(a, b.pick("opener"))
    target = t.rng.uniform(32, 44)
    who = 1
    while t.duration < target:
        r = t.rng.random()
        if r < 0.2:
            t.turn(spk[who], [b.one_word(), b.statement()])
        elif r < 0.35:
            t.say(spk[who], b.question())
        else:
            t.turn(spk[who], [b.statement() for _ in range(int(t.rng.integers(1, 3)))])
        who = 1 - who
    t.say(spk[who], b.pick("closer"))


def s_long_gaps(t: Timeline, b: Bank, spk: list[str]) -> None:
    t.change_gap = (2.1, 3.5)
    a, c = spk
    t.say(a, b.pick("opener"))
    target = t.rng.uniform(28, 40)
    who = 1
    while t.duration < target:
        if _maybe(t.rng, 0.3):
            t.say(spk[who], b.question())
            t.say(spk[1 - who], b.answer())
            t.say(spk[who], b.statement(), gap=float(t.rng.uniform(0.4, 0.9)))
        else:
            t.turn(spk[who], [b.statement() for _ in range(int(t.rng.integers(1, 3)))])
        who = 1 - who
    t.say(spk[who], b.pick("closer"))


def _monologue(t: Timeline, b: Bank, speaker: str, listener: str | None, seconds: float = 31.0) -> None:
    start = None
    while start is None or (t.cursor - start) / SAMPLE_RATE < seconds:
        seg = t.say(speaker, b.monologue())
        start = seg.start if start is None else start
        if listener and _maybe(t.rng, 0.4):
            t.backchannel(listener, b.backchannel(), seg)


def s_monologue(t: Timeline, b: Bank, spk: list[str]) -> None:
    a, c = spk
    t.turn(a, [b.pick("opener"), b.question()])
    _monologue(t, b, c, None)
    t.say(a, b.one_word(extra=False))
    t.say(a, b.pick("closer"), gap=float(t.rng.uniform(0.3, 0.6)))


def s_monologue_backchannels(t: Timeline, b: Bank, spk: list[str]) -> None:
    a, c = spk
    t.turn(a, [b.pick("opener"), b.statement()])
    _monologue(t, b, c, a)
    if not any(s.overlay for s in t.segments):
        t.backchannel(a, b.backchannel(), max(t.segments, key=lambda s: s.end - s.start))
    _glued(t, b, a, c)


def s_fast_alternation(t: Timeline, b: Bank, spk: list[str]) -> None:
    t.change_gap = (0.1, 0.45)
    target = t.rng.uniform(24, 34)
    who = 0
    for i in range(100):
        if i >= 4 and t.duration >= target:
            break
        if i < 4 or _maybe(t.rng, 0.75):  # at least 8 short turns in a row first
            q, a = b.short_pair()
            t.say(spk[who], q)
            t.say(spk[1 - who], a)
        else:
            t.say(spk[who], b.question())
            t.say(spk[1 - who], b.answer())
        who = who if i < 4 else int(t.rng.integers(2))  # same asker: strictly alternating turns
    t.say(spk[who], b.one_word(extra=False))


def s_fast_alternation_3spk(t: Timeline, b: Bank, spk: list[str]) -> None:
    t.change_gap = (0.1, 0.45)
    for k in range(3):  # a sentence each, then fast short exchanges
        t.say(spk[k], b.statement())
    target = t.rng.uniform(28, 38)
    last = 2
    while t.duration < target:
        q, a = b.short_pair()
        asker = _next(t, spk, [last])
        answerer = _next(t, spk, [asker])
        t.say(spk[asker], q)
        t.say(spk[answerer], a)
        last = answerer
    t.say(spk[(last + 1) % 3], b.one_word(extra=False))


def s_questions(t: Timeline, b: Bank, spk: list[str]) -> None:
    a, c = spk
    t.say(a, b.pick("opener"))
    t.turn(c, [b.statement(), b.statement()])
    target = t.rng.uniform(28, 40)
    for i in range(100):
        if i and t.duration >= target:
            break
        t.say(a, b.question())
        answer = b.answer()
        if i == 0 or _maybe(t.rng, 0.65):  # answered by one word
            t.say(c, answer)
            if _maybe(t.rng, 0.5):
                t.say(a, b.statement())
        else:
            t.turn(c, [answer, b.follow(answer)])
    t.say(a, b.pick("closer"))


def s_interruptions(t: Timeline, b: Bank, spk: list[str]) -> None:
    a, c = spk
    t.say(a, b.pick("opener"))
    target = t.rng.uniform(28, 40)
    who = 1
    for i in range(100):
        if i and t.duration >= target:
            break
        t.turn(spk[who], [b.statement() for _ in range(int(t.rng.integers(1, 3)))])
        other = spk[1 - who]
        r = 0.0 if i == 0 else t.rng.random()
        if r < 0.45:  # the other cuts in 0.2-0.7 s before this turn ends, and keeps the floor
            t.say(other, b.statement(), gap=-float(t.rng.uniform(0.2, 0.7)))
        elif r < 0.75:  # the other says one word, this speaker goes on within 0.15 s
            _glued(t, b, other, spk[who])
        else:  # the other says one word over the end of this turn, then takes the floor
            t.say(other, b.one_word(extra=False), gap=-float(t.rng.uniform(0.1, 0.3)))
        who = 1 - who
    t.say(spk[who], b.pick("closer"))


def s_mixed_2spk(t: Timeline, b: Bank, spk: list[str]) -> None:
    a, c = spk
    t.say(a, b.pick("opener"))
    _qa_oneword(t, b, c, a)
    _listened_turn(t, b, c, [a], 3)
    _glued(t, b, a, c)
    t.say(a, b.statement(), gap=float(t.rng.uniform(2.1, 3.0)))
    t.turn(c, [b.statement(), b.one_word(), b.statement()], gap=float(t.rng.uniform(0.05, 0.18)))
    t.turn(a, [b.statement(), b.one_word()])
    t.say(c, b.pick("closer"))


def s_mixed_3spk(t: Timeline, b: Bank, spk: list[str]) -> None:
    a, c, d = spk
    t.say(a, b.pick("opener"))
    t.turn(c, [b.one_word(extra=False), b.statement(), b.statement()])
    _listened_turn(t, b, d, [a, c], 3)
    _glued(t, b, c, a)
    t.say(d, b.question(), gap=float(t.rng.uniform(2.1, 3.0)))
    t.say(c, b.answer())
    t.turn(a, [b.one_word(), b.statement()], gap=float(t.rng.uniform(0.05, 0.18)))
    t.turn(d, [b.statement(), b.statement(), b.one_word()])
    t.say(a, b.pick("closer"))


def s_mixed_4spk(t: Timeline, b: Bank, spk: list[str]) -> None:
    a, c, d, e = spk
    t.turn(a, [b.pick("opener"), b.statement()])
    t.turn(c, [b.statement(), b.statement()])
    t.say(d, b.question(), gap=float(t.rng.uniform(0.05, 0.18)))
    t.say(c, b.answer())
    _listened_turn(t, b, e, [a, d], 3)
    _glued(t, b, a, d)
    t.say(e, b.statement(), gap=float(t.rng.uniform(2.1, 3.0)))
    t.turn(d, [b.one_word(), b.statement()])
    t.say(a, b.pick("closer"))


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("oneword_answers", 2, s_oneword_answers,
             ("oneword-turn", "oneword-turn-start", "question-oneword-answer")),
    Scenario("oneword_positions", 2, s_oneword_positions,
             ("oneword-turn", "oneword-turn-start", "oneword-turn-middle", "oneword-turn-end")),
    Scenario("oneword_glued", 2, s_oneword_glued, ("oneword-then-other", "gap-short")),
    Scenario("backchannels", 2, s_backchannels, ("backchannel-overlap",)),
    Scenario("backchannels_3spk", 3, s_backchannels_3spk, ("backchannel-overlap", "3-speakers")),
    Scenario("three_speakers", 3, s_three_speakers, ("3-speakers", "oneword-turn")),
    Scenario("four_speakers", 4, s_four_speakers, ("4-speakers",), ("standup", "planning", "review")),
    Scenario("four_speakers_crosstalk", 4, s_four_speakers_crosstalk,
             ("4-speakers", "gap-short", "oneword-then-other")),
    Scenario("short_gaps", 2, s_short_gaps, ("gap-short",)),
    Scenario("long_gaps", 2, s_long_gaps, ("gap-long",)),
    Scenario("monologue", 2, s_monologue, ("monologue", "oneword-turn-start")),
    Scenario("monologue_backchannels", 2, s_monologue_backchannels,
             ("monologue", "backchannel-overlap", "oneword-then-other")),
    Scenario("fast_alternation", 2, s_fast_alternation, ("fast-alternation", "gap-short")),
    Scenario("fast_alternation_3spk", 3, s_fast_alternation_3spk, ("fast-alternation", "3-speakers")),
    Scenario("questions", 2, s_questions, ("question-oneword-answer", "oneword-turn"), ("interview", "support")),
    Scenario("interruptions", 2, s_interruptions, ("overlap-interruption",)),
    Scenario("mixed_2spk", 2, s_mixed_2spk,
             ("oneword-then-other", "backchannel-overlap", "gap-long", "gap-short", "oneword-turn-middle",
              "oneword-turn-end", "question-oneword-answer")),
    Scenario("mixed_3spk", 3, s_mixed_3spk,
             ("3-speakers", "oneword-then-other", "backchannel-overlap", "gap-long", "gap-short",
              "oneword-turn-start", "oneword-turn-end", "question-oneword-answer")),
    Scenario("mixed_4spk", 4, s_mixed_4spk,
             ("4-speakers", "oneword-then-other", "backchannel-overlap", "gap-long", "gap-short",
              "question-oneword-answer")),
)
SCENARIO_NAMES = tuple(s.name for s in SCENARIOS)


# ------------------------------------------------------------------------------ tags
def is_one_word(text: str) -> bool:
    return len(re.findall(r"[A-Za-z']+(?:-[A-Za-z']+)*", text)) == 1


def turns(segments: Sequence[Segment]) -> list[list[Segment]]:
    """Runs of one speaker's main (non-back-channel) utterances, in time order."""
    out: list[list[Segment]] = []
    for seg in sorted((s for s in segments if not s.overlay), key=lambda s: (s.start, s.end)):
        if out and out[-1][-1].speaker == seg.speaker:
            out[-1].append(seg)
        else:
            out.append([seg])
    return out


def derive_tags(segments: Sequence[Segment]) -> list[str]:
    """The hard cases the timeline really contains (see REQUIRED_TAGS), from times and texts."""
    tags = {f"{len({s.speaker for s in segments})}-speakers"}
    runs = turns(segments)
    for i, run in enumerate(runs):
        words = [is_one_word(s.text) for s in run]
        if len(run) == 1 and words[0]:
            tags.add("oneword-turn")
            if i > 0 and runs[i - 1][-1].text.rstrip().endswith("?"):
                tags.add("question-oneword-answer")
        if len(run) >= 2 and words[0]:
            tags.add("oneword-turn-start")
        if len(run) >= 3 and any(words[1:-1]):
            tags.add("oneword-turn-middle")
        if len(run) >= 2 and words[-1]:
            tags.add("oneword-turn-end")
        if (run[-1].end - run[0].start) / SAMPLE_RATE >= 30.0:
            tags.add("monologue")
        if i + 1 < len(runs):
            gap = (runs[i + 1][0].start - run[-1].end) / SAMPLE_RATE
            if gap < 0:
                tags.add("overlap-interruption")
            elif gap < 0.2:
                tags.add("gap-short")
            elif gap > 2.0:
                tags.add("gap-long")
            if words[-1] and gap < 0.15:
                tags.add("oneword-then-other")
    short = 0
    for run in runs:
        short = short + 1 if (run[-1].end - run[0].start) / SAMPLE_RATE <= 2.5 else 0
        if short >= 6:
            tags.add("fast-alternation")
    mains = [s for s in segments if not s.overlay]
    for s in segments:
        if s.overlay and any(m.speaker != s.speaker and m.start < s.end and s.start < m.end for m in mains):
            tags.add("backchannel-overlap")
    return sorted(tags)


# ------------------------------------------------------------------------------ building
def _rng(seed: int, name: str, index: int) -> np.random.Generator:
    if int(seed) < 0:
        raise ValueError("seed must be >= 0")
    return np.random.default_rng([int(seed), zlib.crc32(name.encode()), int(index)])


def plan(seed: int, count: int | None = None) -> list[tuple[Scenario, int]]:
    """(scenario, repeat index) for the conversations of a seed: every scenario once, then again."""
    count = len(SCENARIOS) if count is None else count
    return [(SCENARIOS[i % len(SCENARIOS)], i // len(SCENARIOS)) for i in range(count)]


def build(scenario: Scenario | str, seed: int = 0, index: int = 0, synth: Synth | None = None,
          noise_dbfs: float | None = -60.0, pool: Sequence[Voice] = VOICES) -> Conversation:
    """One conversation in memory (nothing written); its voices are drawn from `pool`
    (see `draw_voices`)."""
    if isinstance(scenario, str):
        scenario = {s.name: s for s in SCENARIOS}[scenario]
    synth = synth or Synth()
    rng = _rng(seed, scenario.name, index)
    topic = scenario.topics[int(rng.integers(len(scenario.topics)))]
    labels = list(SPEAKER_LABELS[: scenario.speakers])
    voices = dict(zip(labels, draw_voices(rng, scenario.speakers, pool)))
    gains = {label: float(rng.uniform(-2.5, 2.5)) for label in labels}
    timeline = Timeline(rng, synth, voices, gains)
    scenario.build(timeline, Bank(rng, topic), labels)
    audio = timeline.mix(tail=float(rng.uniform(0.5, 1.2)), noise_dbfs=noise_dbfs)
    uri = f"{scenario.name}_s{seed}" + (f"_{index + 1}" if index else "")
    segments = sorted(timeline.segments, key=lambda s: (s.start, s.end))
    tags = derive_tags(segments) + [f"topic:{topic}"]
    if confusable_pairs(voices.values()):
        tags.append("confusable-voices")
    conv = Conversation(uri, scenario.name, seed, topic, voices, segments, audio, sorted(tags))
    if not MIN_DURATION <= conv.duration <= MAX_DURATION:
        raise RuntimeError(f"{uri}: {conv.duration:.1f} s is outside {MIN_DURATION}-{MAX_DURATION} s")
    return conv


# ------------------------------------------------------------------------------ writing
def rttm_text(conv: Conversation) -> str:
    """One SPEAKER line per utterance (start + duration = the .stm end, to the millisecond)."""
    return "".join(f"SPEAKER {conv.uri} 1 {s.start_s:.3f} {round(s.end_s, 3) - round(s.start_s, 3):.3f} "
                   f"<NA> <NA> {s.speaker} <NA> <NA>\n" for s in conv.segments)


def stm_text(conv: Conversation) -> str:
    return "".join(f"{conv.uri} 1 {s.speaker} {s.start_s:.3f} {s.end_s:.3f} {s.text}\n" for s in conv.segments)


def transcript(conv: Conversation) -> str:
    return " ".join(s.text for s in conv.segments) + "\n"


def write(conv: Conversation, out_dir: str | Path) -> dict:
    """Write <uri>.wav/.rttm/.stm/.txt; return the manifest entry."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sf.write(out / f"{conv.uri}.wav", conv.audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    (out / f"{conv.uri}.rttm").write_text(rttm_text(conv))
    (out / f"{conv.uri}.stm").write_text(stm_text(conv))
    (out / f"{conv.uri}.txt").write_text(transcript(conv))
    return {"audio": f"{conv.uri}.wav", "rttm": f"{conv.uri}.rttm", "stm": f"{conv.uri}.stm",
            "txt": f"{conv.uri}.txt", "uri": conv.uri, "tags": conv.tags,
            "duration": round(conv.duration, 3), "scenario": conv.scenario,
            "speakers": {k: {"voice": v.voice, "pitch": v.pitch, "speed": v.speed, "key": v.key}
                         for k, v in conv.voices.items()}}


def generate(out_dir: str | Path, seed: int = 0, count: int | None = None,
             only: Sequence[str] | None = None, jobs: int = 4,
             noise_dbfs: float | None = -60.0) -> list[dict]:
    """Build and write the conversations of `seed` (all scenarios, or `count` of them cycling
    through the scenarios, or the scenarios named in `only`) and OUT_DIR/manifest.json.
    Returns the manifest entries (paths relative to out_dir)."""
    if only:
        unknown = sorted(set(only) - set(SCENARIO_NAMES))
        if unknown:
            raise ValueError(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIO_NAMES)}")
    todo = [(s, i) for s, i in plan(seed, count) if not only or s.name in only]
    synth = Synth()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        convs = list(pool.map(lambda item: build(item[0], seed, item[1], synth, noise_dbfs), todo))
    entries = [write(conv, out_dir) for conv in convs]
    (Path(out_dir) / "manifest.json").write_text(json.dumps(entries, indent=1) + "\n")
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.corpus", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", nargs="?", help="output folder (created)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=None,
                        help=f"number of conversations (default: one per scenario, {len(SCENARIOS)})")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these scenarios")
    parser.add_argument("--jobs", type=int, default=4, help="conversations built in parallel")
    parser.add_argument("--noise-dbfs", type=float, default=-60.0, help="white-noise floor (default -60)")
    parser.add_argument("--no-noise", action="store_true", help="digital silence between utterances")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            print(f"{s.name:26s} {s.speakers} speakers  {' '.join(s.intended)}")
        return 0
    if not args.out_dir:
        parser.error("OUT_DIR is required")
    if not espeak_available():
        print("espeak-ng is not installed", file=sys.stderr)
        return 2
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    unknown = sorted(set(args.only or ()) - set(SCENARIO_NAMES))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)} (see --list)")
    t0 = time.perf_counter()
    noise = None if args.no_noise else args.noise_dbfs
    entries = generate(args.out_dir, args.seed, args.count, args.only, args.jobs, noise)
    total = sum(e["duration"] for e in entries)
    print(f"{len(entries)} conversations, {total:.0f} s of audio, in {time.perf_counter() - t0:.1f} s -> "
          f"{Path(args.out_dir) / 'manifest.json'}")
    covered = set().union(*(e["tags"] for e in entries)) if entries else set()
    missing = [t for t in REQUIRED_TAGS if t not in covered]
    if missing:
        print(f"note: tags not covered by this selection: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
