import Testing
@testable import RosterCore

@Suite struct SemanticVersionTests {
    private func v(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> SemanticVersion {
        try #require(SemanticVersion(text), "'\(text)' should parse", sourceLocation: sourceLocation)
    }

    private func range(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> VersionRange {
        do {
            return try VersionRange(text)
        } catch {
            Issue.record("'\(text)' should parse: \(error)", sourceLocation: sourceLocation)
            throw error
        }
    }

    /// The versions of `candidates` that `expression` admits.
    private func admitted(_ expression: String, _ candidates: [String]) throws -> [String] {
        let r = try range(expression)
        return candidates.filter { r.contains(versionString: $0) }
    }

    // MARK: - Versions

    @Test func parsesFullPartialAndPrefixedVersions() throws {
        #expect(try v("1.2.3") == SemanticVersion(major: 1, minor: 2, patch: 3))
        #expect(try v("1.2") == SemanticVersion(major: 1, minor: 2, patch: 0))
        #expect(try v("7") == SemanticVersion(major: 7, minor: 0, patch: 0))
        #expect(try v("v1.2.3") == SemanticVersion(major: 1, minor: 2, patch: 3))
        #expect(try v("V2.0") == SemanticVersion(major: 2, minor: 0, patch: 0))
        let rc = try v("1.2.3-rc.1+build.7")
        #expect(rc.preRelease == [.alphanumeric("rc"), .numeric(1)])
        #expect(rc.build == ["build", "7"])
        #expect(rc.description == "1.2.3-rc.1+build.7")
        #expect(try v("1.0.0-alpha-2.x").preRelease == [.alphanumeric("alpha-2"), .alphanumeric("x")])
    }

    @Test func rejectsWhatIsNotAVersion() {
        for text in ["", "v", "1.2.3.4", "1..2", "1.2.", ".1", "a.b.c", "1.2.3-", "1.2.3-rc..1", "1.2.3+", "1.2.3-rc_1",
                     " 1.2.3", "1.2.x", "-1.2.3", "99999999999999999999.0.0", "1.2.3-rc.1+bu ild"] {
            #expect(SemanticVersion(text) == nil, "'\(text)' should not parse")
        }
    }

    @Test func precedenceFollowsSemver2() throws {
        // The example chain from semver.org §11.
        let chain = [
            "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
            "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0", "10.0.0",
        ]
        let versions = try chain.map { try v($0) }
        for (a, b) in zip(versions, versions.dropFirst()) {
            #expect(a < b, "\(a) < \(b)")
            #expect(!(b < a), "not \(b) < \(a)")
        }
        #expect(versions.shuffled().sorted() == versions)
    }

    @Test func buildMetadataIsIgnoredForPrecedenceAndEquality() throws {
        #expect(try v("1.2.3+a") == v("1.2.3+b"))
        #expect(try !(v("1.2.3+a") < v("1.2.3+b")))
        #expect(try Set([v("1.2.3+a"), v("1.2.3")]).count == 1)
        #expect(try v("1.2.3-rc.1") != v("1.2.3"))
    }

    // MARK: - Ranges

    @Test func detectsRangeExpressionsByTheirFirstCharacter() {
        for text in [">=1.2", ">1", "<2", "<=2.0.1", "=1.2.3", "^1.2.3", "~1.2.3", " >=1"] {
            #expect(VersionRange.isRangeExpression(text), "\(text)")
        }
        for text in ["1.2.3", "v1.2.3", "latest", "", " "] {
            #expect(!VersionRange.isRangeExpression(text), "\(text)")
        }
    }

    static let ladder = [
        "0.0.3", "0.0.4", "0.2.3", "0.2.9", "0.3.0", "1.0.0", "1.1.9", "1.2.0", "1.2.3", "1.2.9", "1.3.0", "1.9.9",
        "2.0.0", "2.0.1", "2.0.2", "2.1.0", "3.0.0",
    ]

    @Test(arguments: [
        (">=1.2", ["1.2.0", "1.2.3", "1.2.9", "1.3.0", "1.9.9", "2.0.0", "2.0.1", "2.0.2", "2.1.0", "3.0.0"]),
        (">1.2.0", ["1.2.3", "1.2.9", "1.3.0", "1.9.9", "2.0.0", "2.0.1", "2.0.2", "2.1.0", "3.0.0"]),
        (">1.2", ["1.3.0", "1.9.9", "2.0.0", "2.0.1", "2.0.2", "2.1.0", "3.0.0"]),
        ("<2", ["0.0.3", "0.0.4", "0.2.3", "0.2.9", "0.3.0", "1.0.0", "1.1.9", "1.2.0", "1.2.3", "1.2.9", "1.3.0", "1.9.9"]),
        ("<=2.0.1", ["0.0.3", "0.0.4", "0.2.3", "0.2.9", "0.3.0", "1.0.0", "1.1.9", "1.2.0", "1.2.3", "1.2.9", "1.3.0",
                     "1.9.9", "2.0.0", "2.0.1"]),
        ("<=2.0", ["0.0.3", "0.0.4", "0.2.3", "0.2.9", "0.3.0", "1.0.0", "1.1.9", "1.2.0", "1.2.3", "1.2.9", "1.3.0",
                   "1.9.9", "2.0.0", "2.0.1", "2.0.2"]),
        ("=1.2.3", ["1.2.3"]),
        ("=1.2", ["1.2.0", "1.2.3", "1.2.9"]),
        ("^1.2.3", ["1.2.3", "1.2.9", "1.3.0", "1.9.9"]),
        ("^0.2.3", ["0.2.3", "0.2.9"]),
        ("^0.0.3", ["0.0.3"]),
        ("^1", ["1.0.0", "1.1.9", "1.2.0", "1.2.3", "1.2.9", "1.3.0", "1.9.9"]),
        ("~1.2.3", ["1.2.3", "1.2.9"]),
        ("~1.2", ["1.2.0", "1.2.3", "1.2.9"]),
        ("~1", ["1.0.0", "1.1.9", "1.2.0", "1.2.3", "1.2.9", "1.3.0", "1.9.9"]),
        (">=1.2 <2.0", ["1.2.0", "1.2.3", "1.2.9", "1.3.0", "1.9.9"]),
        (">=1.2 <2", ["1.2.0", "1.2.3", "1.2.9", "1.3.0", "1.9.9"]),
        (">= 1.2   < 2", ["1.2.0", "1.2.3", "1.2.9", "1.3.0", "1.9.9"]),
        (">0.2.3 <=1.0.0", ["0.2.9", "0.3.0", "1.0.0"]),
        (">=v1.2.3 <v1.3", ["1.2.3", "1.2.9"]),
        ("^1.2 !=", nil),
    ] as [(String, [String]?)])
    func rangesAdmitTheRightVersions(expression: String, expected: [String]?) throws {
        guard let expected else {
            #expect(throws: VersionRange.ParseError.self) { try VersionRange(expression) }
            return
        }
        #expect(try admitted(expression, Self.ladder) == expected)
    }

    @Test func preReleasesAreAdmittedOnlyWhenTheRangeNamesTheirRelease() throws {
        let candidates = ["1.5.0-beta", "1.9.9", "2.0.0-rc.1", "2.0.0-rc.2", "2.0.0", "2.1.0-alpha"]
        #expect(try admitted(">=1.2 <2", candidates) == ["1.9.9"])
        #expect(try admitted(">=1.0", candidates) == ["1.9.9", "2.0.0"])
        #expect(try admitted(">=2.0.0-rc.2", candidates) == ["2.0.0-rc.2", "2.0.0"])
        #expect(try admitted(">=2.0.0-rc.1 <2.0.0", candidates) == ["2.0.0-rc.1", "2.0.0-rc.2"])
        #expect(try admitted("=2.0.0-rc.1", candidates) == ["2.0.0-rc.1"])
        #expect(try admitted("^2.0.0-rc.1", candidates) == ["2.0.0-rc.1", "2.0.0-rc.2", "2.0.0"])
        // The ordering itself still puts a pre-release before its release.
        #expect(try range("<2.0.0").contains(v("1.9.9")))
        #expect(try range("<2.0.0-rc.2").contains(v("2.0.0-rc.1")))
        #expect(try !range("<2.0.0-rc.2").contains(v("2.0.0-rc.2")))
    }

    @Test func unparsableOrMissingInstanceVersionsAreNeverAdmitted() throws {
        let r = try range(">=0")
        #expect(!r.contains(versionString: nil))
        #expect(!r.contains(versionString: "latest"))
        #expect(!r.contains(versionString: ""))
        #expect(r.contains(versionString: "v0.0.1"))
        #expect(r.contains(versionString: "3"))
    }

    @Test func badRangesAreRefusedWithAReason() {
        for text in [">=", ">=banana", "=>1.2", "~>1.2", ">=1.2 <", ">=1.2 <two", "^", ">>1", ">=1.2.3.4", ">=1.2 || <1",
                     String(repeating: ">=1 ", count: 17)] {
            do {
                _ = try VersionRange(text)
                Issue.record("'\(text)' should not parse")
            } catch {
                #expect(!error.message.isEmpty)
            }
        }
    }

    @Test func aRangeRoundTripsItsComparators() throws {
        let r = try range("^1.2.3")
        #expect(r.comparators == [
            .init(.greaterOrEqual, SemanticVersion(major: 1, minor: 2, patch: 3)),
            .init(.less, SemanticVersion(major: 2, minor: 0, patch: 0)),
        ])
        #expect(VersionRange(comparators: r.comparators).description == ">=1.2.3 <2.0.0")
    }
}
