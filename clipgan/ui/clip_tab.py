"""placeholder"""


def build(ctx):
    pass
