"""The word list that the corpus sentences are drawn from.

Common, easy-to-pronounce English words (written for this project) so that espeak-ng's
letter-to-sound rules stay on familiar ground and every phoneme class occurs often.
"""

from __future__ import annotations

import numpy as np

WORDS: tuple[str, ...] = tuple(
    """
    able about above across after again against age ago air all almost alone along always
    among animal answer any apple area arm around art ask away baby back bad ball bank
    basket bean bear beautiful because bed before begin behind bell below best better big
    bird black blue boat body book both bottle box boy bread bright bring brother brown
    build busy butter buy cake call came car card care carry cat catch chair change child
    city clean clear clock close cloud coat cold color come cook cool corner could country
    cow cup dark day deep dinner dog door down draw dream dress drink drive dry duck early
    earth east easy eat egg eight end enough evening every eye face fall family far farm
    fast father feel field find fine fire first fish five floor flower fly follow food
    foot forest four friend front fruit full game garden gate girl give glass gold good
    grass great green ground group grow hand happy hard hat head hear heart heavy help
    here high hill hold home hope horse hot hour house idea island just keep kind king
    kitchen lake lamp land large last late laugh leaf learn left letter light line lion
    listen little live long look loud love low lunch make man many map market milk minute
    money month moon morning mother mountain move music name near never new next nice
    night nine north number ocean often old open orange other paper park party people
    picture place plan plant play please pocket quick quiet rain read ready red river road
    rock room round run salt sand say school sea second see seven shade sheep ship shoe
    short show side simple sing sister sit six sleep slow small smile snow soft song soon
    sound south speak spring square star start station stone story street strong summer
    sun table tall teacher ten thank thing think three today together tomorrow town train
    tree true turn two under until up valley very village visit voice wait walk wall warm
    wash watch water wave way weather week west wheel white wide wind window winter wise
    with wood word work world write yard year yellow young zero
    """.split()
)


def random_words(rng: np.random.Generator, count: int) -> list[str]:
    """`count` words drawn uniformly with replacement (one draw per word: reproducible)."""
    return [WORDS[i] for i in rng.integers(0, len(WORDS), size=count)]
