"""The dynamic health profile: tags derived from the data (``rules``), per local day
(``days``), by one logic per patient (``logic``)."""

from vitalstream.operators.profile.logic import ProfileLogic, ProfileRules, ProfileState
from vitalstream.operators.profile.rules import (Hypertension, LowActivity, NocturnalDesaturation,
                                                 NonAdherentMeasurement, PoorGlycaemicControl,
                                                 TachycardiaEpisodes, default_rules)

__all__ = ["Hypertension", "LowActivity", "NocturnalDesaturation", "NonAdherentMeasurement",
           "PoorGlycaemicControl", "ProfileLogic", "ProfileRules", "ProfileState",
           "TachycardiaEpisodes", "default_rules"]
