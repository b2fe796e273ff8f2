"""Quality flags that tracking sets per ROI."""

import enum


class TrackFlag(enum.IntFlag):
    """Bit flags of one tracked ROI (stored as uint16). ``NONE`` means all went well.

    Flags marked *NaN* set the named outputs to NaN.
    """

    NONE = 0
    NO_SIGNAL = 1
    """The ROI shows no bead contrast above its noise: x, y, z NaN."""
    OUTSIDE_ROI = 2
    """The centre left the ROI (or came within a pixel of its edge, or, with QI and FIT, the rings
    about the centre found are not symmetric, as when a bead centred outside the ROI shows only
    its outer rings): x, y, z NaN."""
    PROFILE_CLIPPED = 4
    """Some profile samples fell outside the ROI; the profile uses the rest."""
    PROFILE_INCOMPLETE = 8
    """The bead is leaving the ROI: a radial bin had no sample inside it (that bin NaN), or more
    than a third of all samples fell outside (z would be off by nanometres): z NaN."""
    Z_BELOW_RANGE = 16
    """The profile matches below the Z-LUT's first plane: z NaN. (A bead exactly on an end
    plane is flagged half the time: keep the heights you measure inside the LUT's range.)"""
    Z_ABOVE_RANGE = 32
    """The profile matches above the Z-LUT's last plane: z NaN."""
    NO_LUT = 64
    """No Z-LUT given for this ROI (index < 0): z NaN."""
    LUT_GAP = 128
    """The best-matching Z-LUT planes include an empty (NaN) plane: z NaN."""
    XY_NOT_CONVERGED = 256
    """The last XY refinement step still moved more than 0.3 px; x, y kept."""
    Z_POOR_MATCH = 512
    """The profile resembles no Z-LUT plane (mean squared difference to the nearest, per radial
    bin of the normalised profiles, over 0.2; inside the LUT's range it is ~0.001): the bead is
    far outside the range, or on the other side of focus, where its profile would otherwise be
    matched to some inner plane and given a wrong z. z NaN."""
