#!/usr/bin/env python3
"""Writes data/gridtown.osm.pbf: a small synthetic town, to show that patrold
routes over any OpenStreetMap extract, not only Helsinki's.

Nine east-west and nine north-south streets 100 m apart around (10.75, 59.91):
avenues (two-way), one-way streets in alternating directions, a pedestrian
street, a footway with steps across a park, a bus-only street, a cycleway, and
six mapped cameras. Made up; no real data (CC0).

Needs pyosmium (`pip install osmium`); the tests only read the file it wrote.
"""

import math
import os
import sys

import osmium

LON0, LAT0 = 10.75, 59.91
STEP_M = 100.0
N = 9
M_PER_DEG_LAT = 111_195.0
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(LAT0))


def at(i, j):
    """Grid corner i (west-east), j (south-north)."""
    return (LON0 + i * STEP_M / M_PER_DEG_LON, LAT0 + j * STEP_M / M_PER_DEG_LAT)


def main(path):
    if os.path.exists(path):
        os.remove(path)
    writer = osmium.SimpleWriter(path)
    node_ids = {}
    next_id = [1]

    def node(lonlat, tags=None):
        nid = next_id[0]
        next_id[0] += 1
        writer.add_node(osmium.osm.mutable.Node(id=nid, location=lonlat, tags=tags or {}, version=1))
        return nid

    for i in range(N):
        for j in range(N):
            node_ids[(i, j)] = node(at(i, j))

    ways = []

    def way(refs, tags):
        ways.append((refs, tags))

    for j in range(N):
        refs = [node_ids[(i, j)] for i in range(N)]
        name = f"Street {j}"
        if j % 4 == 0:
            way(refs, {"highway": "secondary", "name": f"Avenue {j}", "maxspeed": "50"})
        elif j == 5:
            way(refs[:5], {"highway": "pedestrian", "name": "Market Walk"})
            way(refs[4:], {"highway": "residential", "name": name})
        elif j % 2 == 1:
            way(refs, {"highway": "residential", "name": name, "oneway": "yes"})
        else:
            way(list(reversed(refs)), {"highway": "residential", "name": name, "oneway": "yes"})
    for i in range(N):
        refs = [node_ids[(i, j)] for j in range(N)]
        if i % 4 == 0:
            way(refs, {"highway": "tertiary", "name": f"Boulevard {i}"})
        elif i == 3:
            way(refs, {"highway": "service", "access": "no", "bus": "yes", "name": "Bus Lane"})
        elif i == 6:
            way(refs[:4], {"highway": "cycleway", "name": "Bike Path"})
            way(refs[3:], {"highway": "residential", "name": f"Road {i}"})
        else:
            way(refs, {"highway": "residential", "name": f"Road {i}"})

    # A park path with steps between two streets' midpoints.
    a = node(((at(1, 6)[0] + at(2, 6)[0]) / 2, at(1, 6)[1]))
    b = node(((at(1, 7)[0] + at(2, 7)[0]) / 2, (at(1, 6)[1] + at(1, 7)[1]) / 2))
    c = node(((at(1, 7)[0] + at(2, 7)[0]) / 2, at(1, 7)[1]))
    way([a, b], {"highway": "footway", "name": "Park Path"})
    way([b, c], {"highway": "steps"})
    # Join the path's ends to the streets it crosses.
    way([node_ids[(1, 6)], a, node_ids[(2, 6)]], {"highway": "footway"})
    way([node_ids[(1, 7)], c, node_ids[(2, 7)]], {"highway": "footway"})

    for k, ((i, j), direction, kind) in enumerate(
        [((0, 0), "45", "fixed"), ((4, 4), "NE", "dome"), ((8, 8), "225", "fixed"),
         ((2, 5), "90", "fixed"), ((6, 2), "180", "dome"), ((4, 8), "S", "fixed")]
    ):
        lon, lat = at(i, j)
        node(
            (lon + 0.00005, lat + 0.00003),
            {
                "man_made": "surveillance",
                "surveillance": "public",
                "surveillance:type": "camera",
                "camera:type": kind,
                "camera:direction": direction,
                "height": "6",
                "name": f"Gridtown camera {k + 1}",
            },
        )

    for refs, tags in ways:
        wid = next_id[0]
        next_id[0] += 1
        writer.add_way(osmium.osm.mutable.Way(id=wid, nodes=refs, tags=tags, version=1))
    writer.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "data", "gridtown.osm.pbf"))
