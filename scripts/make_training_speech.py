"""Generate seeded synthetic English speech (espeak-ng) to train a draft model on.

    python -m scripts.make_training_speech OUT_DIR --clips 600 --seed 0

Writes OUT_DIR/clip-00000.flac ... (16 kHz mono) and OUT_DIR/texts.tsv (file, text). Each
clip is 2-28 s: random sentences from this file's own word banks and templates (not the
dev dialogue's, not evaluation/'s), one or two voices (espeak-ng's English voices x voice
variants), speaking rate 120-230 wpm, pitch 25-75, pauses 0.1-0.8 s, and for some clips
background noise (SNR 8-30 dB) or an 8 kHz telephone band. Draft training uses only the
audio: its labels are the teacher's own transcripts. About 0.15 s of CPU per clip.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from speech_endpoint.speech.audio import resample
from speech_endpoint.schema import SAMPLE_RATE

VOICES = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
          "en-us-nyc"]
VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "klatt3", "croak", "whisper", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee", "Mario", "Michael",
            "Mr serious", "Tweaky", "anika", "belinda", "boris", "david", "edward", "iven", "john", "kaukovalta",
            "linda", "max", "norbert", "quincy", "rob", "steph", "travis", "victor", "zac", "aunty", "benjamin",
            "marcelo", "paul", "robosoft", "sandro", "shelby", "AnxiousAndy", "Alvin", "Hugo", "Lee", "Storm"]

NAMES = ["Maya", "Oliver", "Priya", "Tomas", "Grace", "Kenji", "Lucia", "Ahmed", "Nora", "Felix", "Ingrid",
         "Samuel", "Chloe", "Dmitri", "Amara", "Jonah", "Rosa", "Victor", "Hana", "Leo"]
PEOPLE = ["my neighbour", "the pilot", "our teacher", "the baker", "a stranger", "the doctor", "my cousin",
          "the old fisherman", "the new tenant", "her brother", "the mechanic", "a tourist", "the librarian",
          "the gardener", "his grandmother", "the referee", "a young artist", "the captain", "the chef"]
THINGS = ["the bicycle", "a bowl of soup", "the red umbrella", "an old map", "the kitchen window",
          "a wooden boat", "the garden hose", "a pair of boots", "the radio", "a loaf of bread", "the telescope",
          "a paper kite", "the front gate", "a cup of tea", "the violin", "a basket of apples", "the lantern",
          "the mountain trail", "a postcard", "the piano", "the train ticket", "a box of candles"]
PLACES = ["at the harbour", "in the forest", "near the river", "on the rooftop", "at the market",
          "in the museum", "behind the station", "across the valley", "at the campsite", "in the library",
          "by the lake", "on the island", "in the village square", "at the stadium", "under the bridge"]
TIMES = ["this morning", "last winter", "every Sunday", "after dinner", "before sunrise", "on Tuesday",
         "at midnight", "during the storm", "next spring", "two days ago", "in the afternoon", "once a year"]
VERBS_PAST = ["repaired", "painted", "found", "carried", "borrowed", "cleaned", "sold", "dropped", "opened",
              "photographed", "forgot", "delivered", "wrapped", "lost", "polished", "measured"]
VERBS_BASE = ["fix", "paint", "find", "carry", "borrow", "clean", "sell", "open", "check", "move", "deliver",
              "measure", "return", "replace", "visit", "explore"]
ADJECTIVES = ["quiet", "bright", "heavy", "strange", "ancient", "cheerful", "muddy", "narrow", "enormous",
              "delicate", "crowded", "peaceful", "windy", "golden", "broken", "fresh"]
WEATHER = ["rain", "snow", "fog", "sunshine", "a thunderstorm", "strong wind", "hail", "a heat wave"]
NUMBERS = ["three", "seven", "eleven", "twenty", "forty five", "a hundred", "two thousand", "sixty",
           "nine", "fifteen", "eighty two", "five hundred"]
UNITS = ["kilometres", "minutes", "pages", "steps", "boxes", "birds", "people", "euros", "hours", "metres"]
TOPICS = ["astronomy", "gardening", "chess", "old movies", "volcanoes", "sailing", "bread making",
          "jazz", "ancient history", "mountain birds", "photography", "origami", "football", "poetry"]

TEMPLATES = [
    "{Person} {verb_past} {thing} {place} {time}.",
    "{Name} said that {person} {verb_past} {thing}.",
    "Did you hear that {name} {verb_past} {thing} {time}?",
    "We should {verb} {thing} before {weather} arrives.",
    "The {adj} path {place} was covered in {weather_plain}.",
    "{Name} walked {number} {unit} {place} {time}.",
    "Could you please {verb} {thing} for {name}?",
    "I think {thing} is far too {adj} for {person}.",
    "{Time}, {person} told us a story about {topic}.",
    "There were {number} {unit} waiting {place}.",
    "Why would anyone {verb} {thing} {place}?",
    "{Name} and {name2} are learning about {topic} together.",
    "The forecast says {weather} {time}, so bring {thing}.",
    "If {person} calls, tell them {name} will {verb} {thing} {time}.",
    "Honestly, I never expected {thing} to be so {adj}.",
    "{Person} keeps {number} {unit} of notes about {topic}.",
    "Let me know when you {verb} {thing}, and I will bring {thing2}.",
    "It took {number} {unit} to {verb} {thing} {place}.",
    "{Name}, have you seen {thing} anywhere {place}?",
    "My favourite thing about {topic} is how {adj} it can be.",
    "No, {name} left {thing} {place} {time}.",
    "Yes, of course, {person} can {verb} it {time}.",
    "Well, that sounds {adj}, but what about {thing}?",
    "After {weather_plain}, the {adj} streets {place} looked completely different.",
]


def sentence(rng: np.random.Generator) -> str:
    pick = lambda bank: bank[rng.integers(len(bank))]  # noqa: E731
    weather = pick(WEATHER)
    fields = {
        "name": pick(NAMES), "name2": pick(NAMES), "person": pick(PEOPLE), "thing": pick(THINGS),
        "thing2": pick(THINGS), "place": pick(PLACES), "time": pick(TIMES), "verb_past": pick(VERBS_PAST),
        "verb": pick(VERBS_BASE), "adj": pick(ADJECTIVES), "weather": weather,
        "weather_plain": weather.removeprefix("a ").removeprefix("strong "), "number": pick(NUMBERS),
        "unit": pick(UNITS), "topic": pick(TOPICS),
    }
    fields.update({k[0].upper() + k[1:]: v[0].upper() + v[1:] for k, v in list(fields.items())})
    return pick(TEMPLATES).format(**fields)


def espeak(text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    raw = subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", text],
                         check=True, capture_output=True).stdout
    import io

    samples, sr = sf.read(io.BytesIO(raw), dtype="float32")
    return resample(samples, sr, SAMPLE_RATE).astype(np.float32)


def voice(rng: np.random.Generator) -> tuple[str, int, int]:
    base = VOICES[rng.integers(len(VOICES))]
    variant = VARIANTS[rng.integers(len(VARIANTS))]
    return (f"{base}+{variant}" if variant else base), int(rng.integers(120, 231)), int(rng.integers(25, 76))


def clip(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    target_s = float(rng.uniform(2.0, 28.0))
    speakers = [voice(rng) for _ in range(int(rng.integers(1, 3)))]
    parts = [np.zeros(int(rng.uniform(0.05, 0.5) * SAMPLE_RATE), np.float32)]
    texts: list[str] = []
    total = len(parts[0])
    while True:
        text = sentence(rng)
        name, rate, pitch = speakers[rng.integers(len(speakers))]
        audio = espeak(text, name, rate, pitch)
        if texts and total + len(audio) > min(target_s, 29.0) * SAMPLE_RATE:
            break
        audio = audio[: int(29.0 * SAMPLE_RATE)]
        pause = np.zeros(int(rng.uniform(0.1, 0.8) * SAMPLE_RATE), np.float32)
        parts += [audio, pause]
        texts.append(text)
        total += len(audio) + len(pause)
        if total >= target_s * SAMPLE_RATE:
            break
    samples = np.concatenate(parts)[: int(29.5 * SAMPLE_RATE)]
    samples *= float(rng.uniform(0.2, 0.9)) / max(1e-6, float(np.abs(samples).max()))
    if rng.random() < 0.2:  # telephone band
        samples = resample(resample(samples, SAMPLE_RATE, 8000), 8000, SAMPLE_RATE)[: len(samples)]
    if rng.random() < 0.35:  # background noise
        snr_db = rng.uniform(8.0, 30.0)
        power = float(np.mean(samples ** 2)) / 10 ** (snr_db / 10)
        samples = samples + rng.standard_normal(len(samples)).astype(np.float32) * np.sqrt(power)
    return np.clip(samples, -1, 1).astype(np.float32), " ".join(texts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--clips", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from tqdm import tqdm

    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in tqdm(range(args.clips), desc="clips", unit="clip"):
        samples, text = clip(np.random.default_rng([args.seed, i]))
        name = f"clip-{i:05d}.flac"
        sf.write(args.out_dir / name, samples, SAMPLE_RATE)
        rows.append(f"{name}\t{text}")
    (args.out_dir / "texts.tsv").write_text("\n".join(rows) + "\n")
    print(args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
