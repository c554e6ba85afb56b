"""Stereo calls (`multichannel: true`): each channel transcribed on its own, as one speaker.

The stages of such a request, mixed into `EndpointHandler` and built on its own stages
(speech, decode_options, transcribe, fit_to_speech, render), in this order:
decode_channels -> channel_speech -> transcribe_channels -> attribute_channels -> render_call.
Channel k's words are SPEAKER_0k's (the first, left channel is SPEAKER_00), merged by time;
diarization does not run, even where the endpoint has a model (metadata says so). The
crosstalk guard (each channel's speech counts only where that channel dominates) is
`speech_endpoint.speech.channels`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from diarization_utils import group_utterances
from request import Outcome
from speech_endpoint.render import response
from speech_endpoint.speech import audio as audio_io
from speech_endpoint.speech import channels as ch
from speech_endpoint.schema import (
    Attribution,
    Audio,
    ClientError,
    DecodeOptions,
    Redecoded,
    ResponseJSON,
    SpeechActivity,
    Transcript,
)
from speech_endpoint.attribution.segmentation import segments_from_words
from speech_endpoint.text import join_words


class MultichannelStages:
    """The `multichannel` request's stages; the host class is `EndpointHandler`."""

    def transcribe_call(self, data: dict[str, Any], request, lap: response.Stopwatch, progress=None) -> ResponseJSON:
        """A checked `multichannel` request, from its payload to the response. `lap` has
        timed the request since it arrived."""
        channels = self.decode_channels(data, request)
        timings = {"decode_s": lap()}
        prepared = self.channel_speech(channels)
        timings["speech_detection_s"] = lap()
        options = self.decode_options(request, channels[0].duration)
        transcripts = self.transcribe_channels(prepared, options, progress=progress)
        timings["transcription_s"] = lap()
        attribution = self.attribute_channels(transcripts, prepared)
        timings["attribution_s"] = lap()
        redecode_s = sum(t.redecoded.seconds for t in transcripts)
        timings.update(response.legacy_timings(timings, redecode_s), total_s=lap.total())
        return self.render_call(request, prepared, options, transcripts, attribution, timings)

    def decode_channels(self, data: dict[str, Any], request) -> list[Audio]:
        """One 16 kHz `Audio` per channel; refuses mono audio, raw PCM (no channels to
        tell apart) and channels that carry the same audio."""
        where = "parameter 'multichannel'"
        if request.config.input_format != "auto":
            raise ClientError(f"{where}: raw PCM (input_format) has one channel; send a file with one channel "
                              "per speaker (wav, flac, ...)")
        s = self.settings
        payload = audio_io.payload_bytes(data.get("inputs"), s.max_payload_bytes)
        channels = audio_io.decode_channels(payload, max_seconds=s.max_audio_s, max_channels=s.max_channels)
        if len(channels) < 2:
            raise ClientError(f"{where}: the audio has one channel (mono); it needs one channel per speaker, "
                              "as in a stereo call recording. Send mono audio without 'multichannel'")
        same = ch.same_audio([c.samples for c in channels])
        if same:
            raise ClientError(f"{where}: channels {same[0] + 1} and {same[1] + 1} carry the same audio (a mono "
                              "recording stored as stereo); send it without 'multichannel'")
        return channels

    def channel_speech(self, channels: list[Audio], margin_db: float | None = ch.MARGIN_DB) -> list[ch.Channel]:
        """Each channel's own speech (its Silero VAD pass, kept where the channel dominates)
        and its samples silenced elsewhere. `margin_db` None turns the crosstalk guard off
        (for measuring it): every channel's VAD speech counts, nothing is silenced."""
        activities = [self.speech(c) for c in channels]
        if margin_db is None:
            return [ch.Channel(c, a) for c, a in zip(channels, activities)]
        first = activities[0]
        dominant = ch.dominance([c.samples for c in channels], first.frame_s, channels[0].sample_rate,
                                len(first.mask), margin_db=margin_db)
        own = [ch.own_speech(a, d) for a, d in zip(activities, dominant)]
        return [ch.Channel(ch.silence_elsewhere(c, a, d), a) for c, a, d in zip(channels, own, dominant)]

    def transcribe_channels(self, channels: list[ch.Channel], options: DecodeOptions,
                            progress=None) -> list[Transcript]:
        """Each channel's words, timed and fitted to its own speech."""
        out = []
        for k, channel in enumerate(channels):
            report = None
            if progress:
                report = lambda done, total, k=k: progress(k * total + done, len(channels) * total)  # noqa: E731
            transcript = self.transcribe(channel.audio, channel.activity, options, progress=report)
            out.append(self.fit_to_speech(transcript, channel.activity))
        return out

    def attribute_channels(self, transcripts: list[Transcript], channels: list[ch.Channel]) -> Attribution:
        """Every word to its channel's speaker, merged by time; turns from each channel's speech."""
        words = ch.merge_words(transcripts)
        return Attribution(words=words, segments=segments_from_words(words), utterances=group_utterances(words),
                           turns=ch.channel_turns([c.activity for c in channels]))

    def render_call(self, request, channels: list[ch.Channel], options: DecodeOptions, transcripts: list[Transcript],
                    attribution: Attribution, timings: dict[str, float]) -> ResponseJSON:
        """The usual response; metadata adds the channels' speakers."""
        first = channels[0].activity
        speech = SpeechActivity(first.frame_s, np.max([c.activity.scores for c in channels], axis=0),
                                np.any([c.activity.mask for c in channels], axis=0))
        redecoded = Redecoded(tuple(k for t in transcripts for k in t.redecoded.skips),
                              tuple(loop for t in transcripts for loop in t.redecoded.loops))
        transcript = Transcript(join_words(attribution.words), attribution.words, ch.language(transcripts), redecoded)
        out = self.render(Outcome(request, channels[0].audio, speech, options, transcript, attribution, timings))
        metadata = out["metadata"]
        metadata["diarization"] = False
        metadata["multichannel"] = {"channels": len(channels),
                                    "speakers": [ch.speaker_label(k) for k in range(len(channels))]}
        if self.diarizer is not None:
            metadata["notes"].append("multichannel: each channel is one speaker; diarization did not run")
        return out
