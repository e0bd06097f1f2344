"""``fedcredit report``: the self-contained HTML validation report of a run.

May import ``federation`` and ``protocols``; it reads a run folder (``results.json`` and, for a
horizontal LR, the released model), never a party's rows. ``html`` assembles the page;
``summary``, ``validation``, ``stability``, ``privacy_section`` and ``model_section`` write its
sections; ``statistics`` computes intervals, cut-offs, gains and calibration bands from the
summed score histograms; ``figures`` draws; ``page`` holds the tagged-number and table
helpers; ``names`` the model labels shared with the CLI; ``context`` the run identity facts
gathered when it is written.
"""
