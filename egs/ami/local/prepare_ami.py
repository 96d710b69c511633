#!/usr/bin/env python3
"""AMI meeting corpus -> Kaldi data dirs train, dev, eval mixing IHM and SDM audio.

    prepare_ami.py <amicorpus-dir> <annotations-dir> <data-dir>

<amicorpus-dir>/<meeting>/audio/ holds <meeting>.Headset-<n>.wav (IHM) and
<meeting>.Array1-01.wav (SDM, first mic of array 1). <annotations-dir> is the unpacked AMI
manual annotations (ami_public_manual_1.6.2): corpusResources/meetings.xml maps each
speaker letter (nxt_agent) to its headset channel and global participant id, and
segments/<meeting>.<letter>.segments.xml holds that speaker's segments (transcriber_start,
transcriber_end in seconds). Every segment becomes two utterances of the same speaker, one cut
from the speaker's headset, one from the distant mic, as the paper mixes IHM and SDM.

The split is the official full-corpus-ASR partition (conf/split_{train,dev,eval}.list);
meetings missing from <amicorpus-dir> are skipped with a log line. Labels: utt2channel
(ihm|sdm), utt2room (edinburgh|idiap|tno, from the meeting-id prefix), utt2gender (first
letter of the participant id, e.g. FEE005).
"""

from __future__ import annotations

import argparse
import logging
import xml.etree.ElementTree as ET
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


def read_segments(path: Path) -> list[tuple[float, float]]:
    """(start, end) seconds of every segment in a <meeting>.<letter>.segments.xml file."""
    times = []
    for seg in parse_xml(path, "speaker segments").iter("segment"):
        try:
            times.append((float(seg.get("transcriber_start", "")),
                          float(seg.get("transcriber_end", ""))))
        except ValueError:
            raise FhvaeError(f"{path}: segment '{seg.get(NITE_ID)}' has no numeric "
                             f"transcriber_start/transcriber_end") from None
    return times


def duration(wav: Path) -> float:
    """Seconds of audio in a WAV file (header only)."""
    try:
        return soundfile.info(str(wav)).duration
    except RuntimeError as err:
        raise FhvaeError(f"{wav}: unreadable audio ({str(err).strip()})") from None


def meeting_utterances(meeting: str, audio_dir: Path, annotations: Path,
                       speakers: dict[str, tuple[int, str]]) -> list[Utterance]:
    """IHM and SDM utterances of one meeting, from every speaker's segments file."""
    room = ROOMS.get(meeting[:2])
    if room is None:
        raise FhvaeError(f"{audio_dir}: unknown meeting-id prefix '{meeting[:2]}'")
    sdm = audio_dir / SDM_FILE.format(meeting=meeting)
    if not sdm.is_file():
        raise FhvaeError(f"{audio_dir}: no {sdm.name} (the SDM recording)")
    utts: dict[str, Utterance] = {}
    for agent, (channel, spk) in sorted(speakers.items()):
        seg_file = annotations / "segments" / f"{meeting}.{agent}.segments.xml"
        if not seg_file.is_file():
            logger.info("%s: speaker %s (%s) has no segments file", meeting, agent, spk)
            continue
        ihm = audio_dir / IHM_FILE.format(meeting=meeting, channel=channel)
        if not ihm.is_file():
            raise FhvaeError(f"{audio_dir}: no {ihm.name} (headset of speaker {agent}, {spk})")
        sources = {"ihm": (f"{meeting}_H{channel:02d}", ihm), "sdm": (f"{meeting}_SDM", sdm)}
        lengths = {mic: duration(wav) for mic, (_, wav) in sources.items()}
        for start, end in read_segments(seg_file):
            for mic, (rec, wav) in sources.items():
                # Annotations may run past a file's end: keep the part that has audio.
                begin_cs = round(start * 100)
                end_cs = min(round(end * 100), int(lengths[mic] * 100))
                if end_cs <= begin_cs:
                    continue  # empty at 10 ms resolution, or after the end of the file
                utt = f"{spk}_{meeting}_{mic}_{begin_cs:07d}_{end_cs:07d}"
                utts.setdefault(utt, Utterance(
                    utt=utt, spk=spk, wav=str(wav.resolve()), rec=rec, start=begin_cs / 100,
                    end=end_cs / 100, labels={"channel": mic, "room": room,
                                              "gender": spk[0].lower()}))
    if not utts:
        raise FhvaeError(f"{annotations / 'segments'}: no {meeting}.<letter>.segments.xml "
                         f"with segments")
    return list(utts.values())


def prepare(amicorpus: Path, annotations: Path, data: Path) -> None:
    if not amicorpus.is_dir():
        raise FhvaeError(f"{amicorpus}: no such directory (expected the AMI audio layout "
                         f"<meeting>/audio/<meeting>.Headset-0.wav)")
    if not (annotations / "segments").is_dir():
        raise FhvaeError(f"{annotations}: no segments/ folder (expected the unpacked AMI "
                         f"manual annotations ami_public_manual_1.6.2)")
    meetings = read_meetings(annotations / "corpusResources" / "meetings.xml")
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
            if meeting not in meetings:
                raise FhvaeError(f"{annotations / 'corpusResources' / 'meetings.xml'}: "
                                 f"no meeting '{meeting}'")
            utts += meeting_utterances(meeting, amicorpus / meeting / "audio", annotations,
                                       meetings[meeting])
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
