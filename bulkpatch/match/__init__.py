"""Matching: a row without ids finds its ids in what Partner Center holds (README, "Matching").

Between check and plan: a row naming its customer by company name or domain, and its
subscription by offer (narrowed by friendly name or term), is joined with frames of what was
read (the customer list, each customer's subscriptions), exact after folding case, spaces,
punctuation and accents, never fuzzy. One candidate fills the row's ids; none or several stop
the row, saying what comes closest or listing each candidate. Pure: the reads are the network
side's (`apply.session`), the matched sheet is checked again as a sheet with ids.
"""
