"""The grader's answer keys, one module per lab (``labNN.py``): its own models, reference runs and
replays, from which the rubric files (``grader/test_labNN_*.py``) and the hidden tests compute every
outcome. A rubric file is never imported as a library; what two test files share lives here."""
