"""What an evaluation says, in sentences for people who do not read metric names, each beside how
it is measured: the "In plain words" table of `run`'s report (and of the web app's, which is the same
file)."""

from __future__ import annotations

from typing import Any

from synthswap.faces.dlib_identity import SAME_PERSON_DISTANCE

HOW = {
    "swap": "frames where the destination's face was found, and of them those convert replaced",
    "dlib": "dlib's face-recognition ResNet (never a training signal here) compares each checked frame's face "
            "with the subject's photos and with the destination face it replaced: the share nearer the subject",
    "distance": f"the mean dlib distance to the subject's photos; below {SAME_PERSON_DISTANCE} is dlib's rule for "
                "one person",
    "sface": "the same comparison by SFace, the network that supervised the swap's training",
    "sharpness": "the variance of the Laplacian of the swapped face over the destination face's, same box, same "
                 "frame (median over frames); again with both halved in size",
    "expression": "the length of the difference of six expression measures from the face's landmarks (mouth "
                  "open and width, smile, each eye's opening, brows) between the output's face and the destination's",
    "pose": "the mean difference in head yaw, pitch and roll (degrees) between the output's face and the "
            "destination's",
    "jitter": "the mean frame-to-frame motion of the face's landmarks in the output over the destination's",
    "fid": "the Fréchet distance between Inception features of the output's faces and of the subject's photos",
}


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def plain_words(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(sentence, how it is measured) for each figure the evaluation has."""
    s = summary.get
    rows = []
    if s("frames_with_source_face"):
        rows.append((f"A face was swapped in {_pct(s('swap_rate') or 0.0)} of the {s('frames_with_source_face')} "
                     f"frames that show the destination's face.", HOW["swap"]))
    if s("dlib_subject_closer_rate") is not None:
        rows.append((f"The face is recognised as the subject rather than the person it replaced in "
                     f"{_pct(s('dlib_subject_closer_rate'))} of the frames checked.", HOW["dlib"]))
    if s("dlib_distance_to_subject") is not None:
        d = s("dlib_distance_to_subject")
        verdict = "the same person" if d < SAME_PERSON_DISTANCE else "not yet the same person"
        rows.append((f"Its distance to the subject's photos is {d:.2f}: by this measure, {verdict}.", HOW["distance"]))
    if s("subject_closer_rate") is not None:
        rows.append((f"A second network agrees in {_pct(s('subject_closer_rate'))} of the frames.", HOW["sface"]))
    if s("sharpness_ratio") is not None:
        half = s("sharpness_ratio_half")
        rows.append((f"The swapped face has {_pct(s('sharpness_ratio'))} of the fine detail of the destination's own "
                     f"face" + (f" ({_pct(half)} at half size, where added grain and sharpening do not count)"
                                if half is not None else "") + "; 100% would match it.", HOW["sharpness"]))
    if s("expression_error") is not None:
        rows.append((f"Expressions follow the destination's with a mean error of {s('expression_error'):.2f} "
                     f"(0 would be exact).", HOW["expression"]))
    if s("pose_error_deg") is not None:
        rows.append((f"The head keeps the destination's pose within {s('pose_error_deg'):.1f} degrees on average.",
                     HOW["pose"]))
    if s("landmark_jitter_ratio") is not None:
        rows.append((f"The face moves {_pct(s('landmark_jitter_ratio'))} as much from frame to frame as the "
                     f"destination's (above 100%: it flickers).", HOW["jitter"]))
    if s("fid") is not None:
        rows.append((f"As a set, the output's faces are at FID {s('fid'):.0f} from the subject's photos (lower is "
                     f"closer; two sets of the same person's photos score far lower).", HOW["fid"]))
    return rows


__all__ = ["HOW", "plain_words"]
