"""SOPs and content cadence: scheduled posts and task sequences per staff account, group or
segment, cadence limits, one monthly message budget per member, and the copy library."""
