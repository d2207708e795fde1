"""Reading a folder into a Submission: listing, bounded reads, stub decoding, submission.json, logs.

Loading records what it sees (figures, issues); it never judges. Rules turn issues into findings.
"""
