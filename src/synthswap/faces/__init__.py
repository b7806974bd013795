"""Face analysis shared by every stage: detect, landmarks, align, measure, identity, mask."""
