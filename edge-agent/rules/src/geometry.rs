//! Points, lines and polygons in scene pixels, and the two questions rules ask of them: did a path cross a
//! line (and which way), and is a point inside a zone.

/// A point in scene pixels.
pub type Point = [f32; 2];

pub(crate) fn sub(a: Point, b: Point) -> Point {
    [a[0] - b[0], a[1] - b[1]]
}

pub(crate) fn dot(a: Point, b: Point) -> f32 {
    a[0] * b[0] + a[1] * b[1]
}

pub(crate) fn cross(a: Point, b: Point) -> f32 {
    a[0] * b[1] - a[1] * b[0]
}

pub(crate) fn length(a: Point) -> f32 {
    dot(a, a).sqrt()
}

pub(crate) fn distance(a: Point, b: Point) -> f32 {
    length(sub(a, b))
}

/// A line segment with the direction vehicles are meant to cross it in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DirectedLine {
    pub a: Point,
    pub b: Point,
    /// Unit vector of the direction of travel that counts as crossing.
    pub direction: Point,
}

impl DirectedLine {
    /// `direction` need not be unit length; it must not be zero or parallel to the line (validated).
    pub fn new(a: Point, b: Point, direction: Point) -> Self {
        let n = length(direction).max(f32::EPSILON);
        Self { a, b, direction: [direction[0] / n, direction[1] / n] }
    }

    /// Signed distance of `p` from the line: positive on the side vehicles cross towards.
    pub fn beyond(&self, p: Point) -> f32 {
        let ab = sub(self.b, self.a);
        let side = cross(ab, sub(p, self.a)) / length(ab).max(f32::EPSILON);
        if cross(ab, self.direction) >= 0.0 {
            side
        } else {
            -side
        }
    }

    /// Where the path `from -> to` crosses the segment going the counted way: the fraction of the path
    /// (0..=1) at the crossing. `None` when it does not cross, crosses outside the segment, or goes back.
    pub fn crossed(&self, from: Point, to: Point) -> Option<f32> {
        let (before, after) = (self.beyond(from), self.beyond(to));
        if !(before < 0.0 && after >= 0.0) {
            return None;
        }
        let t = before / (before - after);
        let at = [from[0] + t * (to[0] - from[0]), from[1] + t * (to[1] - from[1])];
        // Within the segment's extent (with a pixel of slack for paths that touch an end).
        let ab = sub(self.b, self.a);
        let along = dot(sub(at, self.a), ab) / dot(ab, ab).max(f32::EPSILON);
        let slack = 1.0 / length(ab).max(1.0);
        (-slack..=1.0 + slack).contains(&along).then_some(t)
    }
}

/// A closed polygon (at least three corners).
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon(pub Vec<Point>);

impl Polygon {
    /// Even-odd ray casting; points on an edge may fall either way.
    pub fn contains(&self, p: Point) -> bool {
        let pts = &self.0;
        let mut inside = false;
        let mut j = pts.len().wrapping_sub(1);
        for i in 0..pts.len() {
            let (a, b) = (pts[i], pts[j]);
            if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
                inside = !inside;
            }
            j = i;
        }
        inside
    }

    /// Twice the signed area; zero for degenerate polygons.
    pub(crate) fn doubled_area(&self) -> f32 {
        let pts = &self.0;
        (0..pts.len()).map(|i| cross(pts[i], pts[(i + 1) % pts.len()])).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop_line() -> DirectedLine {
        // Horizontal line at y=100, traffic moving up the picture (decreasing y).
        DirectedLine::new([0.0, 100.0], [200.0, 100.0], [0.0, -1.0])
    }

    #[test]
    fn a_path_through_the_line_the_counted_way_crosses_it_at_the_right_fraction() {
        let t = stop_line().crossed([50.0, 120.0], [50.0, 80.0]).expect("crossed");
        assert!((t - 0.5).abs() < 1e-6);
    }

    #[test]
    fn a_path_the_other_way_or_beside_the_segment_does_not_cross() {
        assert!(stop_line().crossed([50.0, 80.0], [50.0, 120.0]).is_none());
        assert!(stop_line().crossed([300.0, 120.0], [300.0, 80.0]).is_none());
    }

    #[test]
    fn beyond_is_positive_past_the_line_whichever_way_the_line_was_drawn() {
        let reversed = DirectedLine::new([200.0, 100.0], [0.0, 100.0], [0.0, -1.0]);
        for line in [stop_line(), reversed] {
            assert!((line.beyond([10.0, 90.0]) - 10.0).abs() < 1e-5);
            assert!(line.beyond([10.0, 110.0]) < 0.0);
        }
    }

    #[test]
    fn a_polygon_contains_its_inside_only() {
        let square = Polygon(vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]);
        assert!(square.contains([5.0, 5.0]));
        assert!(!square.contains([15.0, 5.0]));
        assert!((square.doubled_area() - 200.0).abs() < 1e-5);
    }
}
