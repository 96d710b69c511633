#!/usr/bin/env python3
"""AMI meeting corpus -> Kaldi data dirs train, dev, eval mixing IHM and SDM audio.

    prepare_ami.py <amicorpus-dir> <annotations-dir> <data-dir>

<amicorpus-dir>/<meeting>/audio/ holds <meeting>.Headset-<n>.wav (IHM) and
<meeting>.Array1-01.wav (SDM, first mic of array 1). <annotations-dir> is either
  - Kaldi's egs/ami/s5b/data/local/annotations (train.txt, dev.txt, eval.txt, written by its
    local/ami_text_prep.sh: `<meeting> H0<n> <participant> <start-s> <end-s> <words>`): the
    segments are then exactly those of a Kaldi AMI system, so every id matches it; or
  - the unpacked AMI manual annotations (ami_public_manual_1.6.2): corpusResources/
    meetings.xml maps each speaker letter (nxt_agent) to its headset channel and participant
    id, segments/<meeting>.<letter>.segments.xml holds that speaker's segments
    (transcriber_start, transcriber_end). Ids have Kaldi's form, but Kaldi re-times and
    splits segments at sentence ends, so only some of them occur in a Kaldi system.
Every segment becomes two utterances of the same person, one cut from the headset, one from
the distant mic, as the paper mixes IHM and SDM. Ids follow Kaldi's local/ami_ihm_data_prep.sh
and ami_sdm_data_prep.sh: utterance AMI_<meeting>_H0<n>_<participant>_<start>_<end> (IHM) or
AMI_<meeting>_SDM_<participant>_<start>_<end> (times in centiseconds, 7 digits), recording
AMI_<meeting>_H0<n> or AMI_<meeting>_SDM, IHM speaker AMI_<meeting>_H0<n>_<participant> as in
Kaldi. Kaldi's SDM speaker is the whole meeting (AMI_<meeting>); here it is
AMI_<meeting>_SDM_<participant>, because a meeting-wide speaker would merge people and would
not C-sort consistently beside the IHM speakers in one data dir.

The split is the official full-corpus-ASR partition (conf/split_{train,dev,eval}.list, Kaldi's
local/split_*.orig); meetings missing from <amicorpus-dir> are skipped with a log line, and a
meeting without <meeting>.Array1-01.wav loses its SDM copies with one warning (Kaldi's SDM prep
drops those segments too). A missing headset file is an error, as in Kaldi (its IHM data dir
then fails validation). Labels: utt2channel (ihm|sdm), utt2room (edinburgh|idiap|tno, from
the meeting-id prefix), utt2participant (global participant id, e.g. FEE041, the same person
across meetings and microphones), utt2gender (its first letter).
"""

from __future__ import annotations

import argparse
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import soundfile

from fhvae.bin.cli import run_main
from fhvae.errors import FhvaeError
from fhvae.io.datadir_writer import Utterance, write_data_dir

logger = logging.getLogger("prepare_ami")

CONF = Path(__file__).resolve().parents[1] / "conf"
SPLITS = ("train", "dev", "eval")
NITE_ID = "{http://nite.sourceforge.net/}id"
# Meeting-id prefix -> recording site (each site has one meeting room).
ROOMS = {"ES": "edinburgh", "EN": "edinburgh", "IS": "idiap", "IB": "idiap", "IN": "idiap",
         "TS": "tno"}
SDM_FILE = "{meeting}.Array1-01.wav"
IHM_FILE = "{meeting}.Headset-{channel}.wav"
ANNOTATIONS = ("the unpacked AMI manual annotations ami_public_manual_1.6.2 (segments/) or "
               "Kaldi's egs/ami/s5b/data/local/annotations (train.txt, dev.txt, eval.txt)")


@dataclass(frozen=True)
class Segment:
    """One annotated segment: who spoke (headset channel, participant) and when."""

    channel: int
    participant: str
    start_cs: int
    end_cs: int


def centiseconds(seconds: float) -> int:
    """A time as Kaldi's AMI ids write it (rounded to the nearest 10 ms, halves up)."""
    return int(100 * seconds + 0.5)


def parse_xml(path: Path, what: str) -> ET.Element:
    if not path.is_file():
        raise FhvaeError(f"{path.parent}: no {path.name} ({what})")
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as err:
        raise FhvaeError(f"{path}:{err.position[0]}: not valid XML ({err})") from None


def read_meetings(path: Path) -> dict[str, dict[str, tuple[int, str]]]:
    """meeting -> speaker letter -> (headset channel, global participant id)."""
    root = parse_xml(path, "AMI manual annotations, corpusResources/meetings.xml")
    meetings: dict[str, dict[str, tuple[int, str]]] = {}
    for meeting in root.iter("meeting"):
        name = meeting.get("observation")
        for spk in meeting.iter("speaker"):
            agent, channel, global_name = (spk.get("nxt_agent"), spk.get("channel"),
                                           spk.get("global_name"))
            if not (name and agent and global_name and channel and channel.isdigit()):
                raise FhvaeError(f"{path}: meeting '{name}': a <speaker> lacks nxt_agent, "
                                 f"channel or global_name")
            meetings.setdefault(name, {})[agent] = (int(channel), global_name)
    return meetings


def read_xml_segments(path: Path, channel: int, participant: str) -> list[Segment]:
    """Segments of one <meeting>.<letter>.segments.xml file."""
    segments = []
    for seg in parse_xml(path, "speaker segments").iter("segment"):
        try:
            start, end = (float(seg.get("transcriber_start", "")),
                          float(seg.get("transcriber_end", "")))
        except ValueError:
            raise FhvaeError(f"{path}: segment '{seg.get(NITE_ID)}' has no numeric "
                             f"transcriber_start/transcriber_end") from None
        segments.append(Segment(channel, participant, centiseconds(start), centiseconds(end)))
    return segments


def xml_segments(annotations: Path) -> dict[str, list[Segment]]:
    """meeting -> segments, from the AMI manual annotations."""
    segments: dict[str, list[Segment]] = {}
    for meeting, speakers in read_meetings(annotations / "corpusResources" /
                                           "meetings.xml").items():
        for agent, (channel, participant) in sorted(speakers.items()):
            seg_file = annotations / "segments" / f"{meeting}.{agent}.segments.xml"
            if seg_file.is_file():
                segments.setdefault(meeting, []).extend(
                    read_xml_segments(seg_file, channel, participant))
    return segments


def kaldi_segments(annotations: Path) -> dict[str, list[Segment]]:
    """meeting -> segments, from Kaldi's data/local/annotations/{train,dev,eval}.txt."""
    segments: dict[str, list[Segment]] = {}
    for split in SPLITS:
        path = annotations / f"{split}.txt"
        if not path.is_file():
            raise FhvaeError(f"{annotations}: no {split}.txt (expected {ANNOTATIONS})")
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            try:
                meeting, headset, participant, start, end = fields[:5]
                if not (headset.startswith("H0") and headset[2:].isdigit()):
                    raise ValueError
                segments.setdefault(meeting, []).append(Segment(
                    int(headset[2:]), participant, centiseconds(float(start)),
                    centiseconds(float(end))))
            except ValueError:
                raise FhvaeError(f"{path}:{lineno}: expected '<meeting> H0<n> <participant> "
                                 f"<start-s> <end-s> <words>'") from None
    return segments


def duration(wav: Path) -> float:
    """Seconds of audio in a WAV file (header only)."""
    try:
        return soundfile.info(str(wav)).duration
    except RuntimeError as err:
        raise FhvaeError(f"{wav}: unreadable audio ({str(err).strip()})") from None


def recordings(meeting: str, audio_dir: Path, seg: Segment,
               sdm: Path | None) -> list[tuple[str, str, Path]]:
    """(mic label, Kaldi recording id, audio file) of the copies of one segment."""
    ihm = audio_dir / IHM_FILE.format(meeting=meeting, channel=seg.channel)
    if not ihm.is_file():
        raise FhvaeError(f"{audio_dir}: no {ihm.name} (headset of {seg.participant})")
    copies = [("ihm", f"AMI_{meeting}_H0{seg.channel}", ihm)]
    if sdm is not None:
        copies.append(("sdm", f"AMI_{meeting}_SDM", sdm))
    return copies


def meeting_utterances(meeting: str, audio_dir: Path, segments: list[Segment]) -> list[Utterance]:
    """IHM and SDM utterances of one meeting's segments."""
    room = ROOMS.get(meeting[:2])
    if room is None:
        raise FhvaeError(f"{audio_dir}: unknown meeting-id prefix '{meeting[:2]}'")
    sdm: Path | None = audio_dir / SDM_FILE.format(meeting=meeting)
    if not sdm.is_file():
        logger.warning("%s: no %s: its SDM copies are skipped", meeting, sdm.name)
        sdm = None
    lengths: dict[Path, float] = {}
    utts: dict[str, Utterance] = {}
    for seg in segments:
        for mic, rec, wav in recordings(meeting, audio_dir, seg, sdm):
            if wav not in lengths:
                lengths[wav] = duration(wav)
            # Annotations may run past a file's end: keep the part that has audio (the id
            # keeps the annotated times, as Kaldi's does).
            end_cs = min(seg.end_cs, int(lengths[wav] * 100))
            if end_cs <= seg.start_cs:
                continue  # empty at 10 ms resolution, or after the end of the file
            spk = f"{rec}_{seg.participant}"
            utt = f"{spk}_{seg.start_cs:07d}_{seg.end_cs:07d}"
            utts.setdefault(utt, Utterance(
                utt=utt, spk=spk, wav=str(wav.resolve()), rec=rec, start=seg.start_cs / 100,
                end=end_cs / 100, labels={"channel": mic, "room": room,
                                          "participant": seg.participant,
                                          "gender": seg.participant[0].lower()}))
    if not utts:
        raise FhvaeError(f"{audio_dir}: meeting {meeting} has no annotated segment with audio")
    return list(utts.values())


def read_annotations(annotations: Path) -> dict[str, list[Segment]]:
    """meeting -> segments from whichever of the two annotation layouts `annotations` is."""
    if (annotations / "segments").is_dir():
        return xml_segments(annotations)
    if (annotations / "train.txt").is_file():
        return kaldi_segments(annotations)
    raise FhvaeError(f"{annotations}: no segments/ folder or train.txt (expected "
                     f"{ANNOTATIONS})")


def prepare(amicorpus: Path, annotations: Path, data: Path) -> None:
    if not amicorpus.is_dir():
        raise FhvaeError(f"{amicorpus}: no such directory (expected the AMI audio layout "
                         f"<meeting>/audio/<meeting>.Headset-0.wav)")
    segments = read_annotations(annotations)
    for split in SPLITS:
        listed = (CONF / f"split_{split}.list").read_text().split()
        present = [m for m in listed if (amicorpus / m / "audio").is_dir()]
        if len(present) < len(listed):
            logger.info("%s: %d of the %d %s meetings are present", amicorpus, len(present),
                        len(listed), split)
        if not present:
            raise FhvaeError(f"{amicorpus}: none of the {split} meetings of "
                             f"{CONF / f'split_{split}.list'} has a <meeting>/audio/ folder")
        utts = []
        for meeting in present:
            if meeting not in segments:
                raise FhvaeError(f"{annotations}: no segments of meeting '{meeting}'")
            utts += meeting_utterances(meeting, amicorpus / meeting / "audio",
                                       segments[meeting])
        write_data_dir(data / split, utts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("amicorpus", type=Path, help="audio: <meeting>/audio/*.wav")
    parser.add_argument("annotations", type=Path, help="unpacked AMI manual annotations")
    parser.add_argument("data", type=Path, help="output: data/{train,dev,eval}")
    args = parser.parse_args(argv)
    prepare(args.amicorpus, args.annotations, args.data)


if __name__ == "__main__":
    run_main(main)
